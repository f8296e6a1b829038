// perplexity(): llama-perplexity's chunked, second-half scoring (tools/perplexity/perplexity.cpp).
#include "engine/perplexity.h"

#include "engine/batch.h"

#include <algorithm>
#include <cmath>

namespace specd::engine {
namespace {

// log p(tok) from one row of logits, with llama-perplexity's arithmetic: float max, each exp in
// float, their sum in double.
double log_prob(std::span<const float> logits, int32_t tok) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(l - mx);
  return static_cast<double>(logits[static_cast<size_t>(tok)] - mx) - std::log(sum);
}

}  // namespace

Result<PerplexityResult> perplexity(Forward& fwd, KvCache& kv, std::span<const int32_t> tokens, int32_t n_ctx,
                                    int32_t bos, int32_t n_batch, int32_t max_chunks) {
  if (n_ctx < 4 || n_batch < 1)
    return make_error(SPECD_E_INVALID_ARG, "perplexity needs a context of at least 4 and a batch of at least 1");
  if (tokens.size() < 2 * static_cast<size_t>(n_ctx))
    return make_error(SPECD_E_INVALID_ARG, "the text has %zu tokens; a context of %d needs at least %d",
                      tokens.size(), n_ctx, 2 * n_ctx);
  int32_t n_chunks = static_cast<int32_t>(tokens.size() / static_cast<size_t>(n_ctx));
  if (max_chunks >= 0) n_chunks = std::min(n_chunks, max_chunks);
  auto seq = kv.create_seq();
  if (!seq) return seq.error();
  const int32_t first = n_ctx / 2;
  PerplexityResult r;
  double nll = 0, nll2 = 0;
  Batch batch(n_batch);
  std::vector<int32_t> rows;
  Status st;
  for (int32_t c = 0; c < n_chunks && st; ++c) {
    const int32_t* chunk = tokens.data() + static_cast<ptrdiff_t>(c) * n_ctx;
    kv.truncate(*seq, 0);
    for (int32_t at = 0; at < n_ctx && st; at += n_batch) {
      const int32_t end = std::min(n_ctx, at + n_batch);
      batch.clear();
      rows.clear();
      for (int32_t j = at; j < end; ++j) {
        const int32_t tok = j == 0 && bos >= 0 ? bos : chunk[j];
        rows.push_back(batch.add_causal(*seq, tok, j, j >= first && j < n_ctx - 1 ? ROW_WANT_LOGITS : 0u));
      }
      st = fwd.run(batch);
      if (!st) break;
      int32_t out = 0;
      for (int32_t j = std::max(at, first); j < std::min(end, n_ctx - 1); ++j) {
        const double lp = log_prob(fwd.logits(out++), chunk[j + 1]);
        nll -= lp;
        nll2 += lp * lp;
        ++r.scored;
      }
      st = fwd.commit(*seq, rows);
    }
    if (st) {
      ++r.chunks;
      r.running.push_back(std::exp(nll / static_cast<double>(r.scored)));
    }
  }
  kv.free_seq(*seq);
  if (!st) return st.error();
  const double mean = nll / static_cast<double>(r.scored);
  r.ppl = std::exp(mean);
  const double var = nll2 / static_cast<double>(r.scored) - mean * mean;
  r.ppl_err = var > 0 && r.scored > 1 ? std::sqrt(var / static_cast<double>(r.scored - 1)) * r.ppl : 0.0;
  return r;
}

}  // namespace specd::engine
