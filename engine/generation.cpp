// Generator::run: prefill in chunks, then sample → forward one row → commit until a stop.
#include "engine/generation.h"

#include <algorithm>
#include <chrono>

namespace specd::engine {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
KvCacheOptions single_sequence() {
  KvCacheOptions o;
  o.max_seqs = 1;
  return o;
}
}  // namespace

Generator::Generator(const Model& model, kernels::ThreadPool& pool, int32_t prefill_chunk)
    : model_(model),
      kv_(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len, single_sequence()),
      fwd_(model, kv_, pool),
      batch_(std::max(1, prefill_chunk)),
      sampler_(model.config().vocab),
      chunk_(std::max(1, prefill_chunk)) {
  rows_.reserve(static_cast<size_t>(chunk_));
  fwd_.reserve(chunk_, 1);
}

Status Generator::prefill(SeqId seq, const std::vector<int32_t>& prompt, int32_t* forwards) {
  const int32_t n = static_cast<int32_t>(prompt.size());
  for (int32_t start = 0; start < n; start += chunk_) {
    const int32_t end = std::min(n, start + chunk_);
    batch_.clear();
    rows_.clear();
    for (int32_t i = start; i < end; ++i) {
      const uint32_t flags = i == n - 1 ? ROW_WANT_LOGITS : 0u;
      rows_.push_back(batch_.add_causal(seq, prompt[static_cast<size_t>(i)], i, flags));
    }
    SPECD_TRY(fwd_.run(batch_));
    SPECD_TRY(fwd_.commit(seq, rows_));
    ++*forwards;
  }
  return {};
}

Result<GenerateResult> Generator::run(const GenerateRequest& req, TokenCallback cb, void* user) {
  const ModelConfig& c = model_.config();
  if (req.prompt.empty()) return make_error(SPECD_E_INVALID_ARG, "empty prompt");
  if (req.max_tokens < 0) return make_error(SPECD_E_INVALID_ARG, "max_tokens must be ≥ 0");
  for (int32_t t : req.prompt)
    if (t < 0 || t >= c.vocab) return make_error(SPECD_E_BAD_TOKEN, "prompt token id %d out of range [0, %d)", t, c.vocab);
  if (static_cast<int64_t>(req.prompt.size()) > c.ctx_len)
    return make_error(SPECD_E_CONTEXT, "prompt of %zu tokens exceeds the context length %d", req.prompt.size(), c.ctx_len);

  auto seq_r = kv_.create_seq();
  if (!seq_r) return seq_r.error();
  const SeqId seq = *seq_r;
  struct Release {
    KvCache& kv;
    SeqId s;
    ~Release() { kv.free_seq(s); }
  } release{kv_, seq};

  rng_.reseed(req.sampling.seed);
  GenerateResult res;
  res.tokens.reserve(static_cast<size_t>(req.max_tokens));
  res.finish_reason = "length";
  const auto t0 = Clock::now();
  SPECD_TRY(prefill(seq, req.prompt, &res.prefill_forwards));
  int32_t next = req.max_tokens > 0 ? sampler_.sample(fwd_.logits(0), req.sampling, rng_) : -1;
  res.prefill_seconds = seconds_since(t0);

  const auto t1 = Clock::now();
  while (static_cast<int32_t>(res.tokens.size()) < req.max_tokens) {
    res.tokens.push_back(next);
    if (cb && cb(next, user) != 0) {
      res.finish_reason = "cancel";
      break;
    }
    if (std::find(req.stop_tokens.begin(), req.stop_tokens.end(), next) != req.stop_tokens.end()) {
      res.finish_reason = "stop";
      break;
    }
    if (static_cast<int32_t>(res.tokens.size()) == req.max_tokens) break;
    const int32_t pos = kv_.length(seq);
    if (pos >= c.ctx_len) {
      res.finish_reason = "context";
      break;
    }
    batch_.clear();
    const int32_t row = batch_.add(seq, next, pos, ROW_WANT_LOGITS);
    SPECD_TRY(fwd_.run(batch_));
    SPECD_TRY(fwd_.commit(seq, std::span<const int32_t>(&row, 1)));
    ++res.decode_forwards;
    next = sampler_.sample(fwd_.logits(0), req.sampling, rng_);
  }
  res.decode_seconds = seconds_since(t1);
  return res;
}

}  // namespace specd::engine
