// Generator: in-process autoregressive generation over one sequence (prefill, then one row a step).
//
// This is the plain decoding loop `specd generate` and `specd-bench` use; decoder plugins
// (issue: plugin ABI) replace the per-step policy but keep this shape: forward, sample, commit.
#pragma once

#include "engine/batch.h"
#include "engine/forward.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "kernels/cpu/thread_pool.h"

#include <string>
#include <vector>

namespace specd::engine {

struct GenerateRequest {
  std::vector<int32_t> prompt;        // must be non-empty; ids checked against the vocab
  int32_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<int32_t> stop_tokens;   // generation ends after emitting one of these
};

struct GenerateResult {
  std::vector<int32_t> tokens;        // generated ids (stop token included when one ended it)
  int32_t prefill_forwards = 0;
  int32_t decode_forwards = 0;
  double prefill_seconds = 0.0;       // wall time of the prompt forwards (+ first sample)
  double decode_seconds = 0.0;        // wall time of every later step
  std::string finish_reason;          // "length", "stop", "context"
};

// Called once per emitted token, in order; return non-zero to stop early (finish_reason "cancel").
using TokenCallback = int (*)(int32_t token, void* user);

class Generator {
 public:
  // prefill_chunk: rows per prefill forward (long prompts run in several calls).
  Generator(const Model& model, kernels::ThreadPool& pool, int32_t prefill_chunk = 256);

  // Errors: SPECD_E_INVALID_ARG (empty prompt, max_tokens < 0), SPECD_E_BAD_TOKEN,
  // SPECD_E_CONTEXT (prompt does not fit the context), SPECD_E_KV_FULL.
  Result<GenerateResult> run(const GenerateRequest& req, TokenCallback cb = nullptr, void* user = nullptr);

  Forward& forward() { return fwd_; }
  KvCache& kv() { return kv_; }

 private:
  Status prefill(SeqId seq, const std::vector<int32_t>& prompt, int32_t* forwards);

  const Model& model_;
  KvCache kv_;
  Forward fwd_;
  Batch batch_;
  Sampler sampler_;
  Rng rng_;
  int32_t chunk_;
  std::vector<int32_t> rows_;
};

}  // namespace specd::engine
