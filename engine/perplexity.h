// Perplexity of a model on a token stream, computed as llama.cpp's llama-perplexity does, so a
// quantised file can be checked against llama.cpp's figure for it.
#pragma once

#include "engine/forward.h"
#include "engine/kv_cache.h"
#include "kernels/result.h"

#include <cstdint>
#include <span>
#include <vector>

namespace specd::engine {

struct PerplexityResult {
  double ppl = 0;      // exp(mean negative log-likelihood of the scored tokens)
  double ppl_err = 0;  // its standard error, as llama-perplexity's "+/-"
  int32_t chunks = 0;
  int64_t scored = 0;           // tokens scored
  std::vector<double> running;  // the estimate after each chunk (llama-perplexity's "[1]x,[2]y,...")
};

// tokens: the whole text as llama-perplexity encodes it (the model's own add_special rule). It is cut
// into chunks of n_ctx tokens (a partial last chunk is dropped); each chunk is a fresh sequence whose
// first token is replaced by bos when bos ≥ 0 (llama-perplexity does so when the vocabulary adds
// BOS), and in each chunk the logits of positions n_ctx/2 … n_ctx-2 score the token that follows.
// Rows go to fwd in calls of at most n_batch; kv must have a free sequence and room for n_ctx
// positions. max_chunks < 0: all chunks. Errors: SPECD_E_INVALID_ARG (n_ctx < 4, n_batch < 1, fewer
// than 2·n_ctx tokens, as llama-perplexity requires), fwd's and kv's.
Result<PerplexityResult> perplexity(Forward& fwd, KvCache& kv, std::span<const int32_t> tokens, int32_t n_ctx,
                                    int32_t bos, int32_t n_batch = 64, int32_t max_chunks = -1);

}  // namespace specd::engine
