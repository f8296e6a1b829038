// DecodeRuntime: in-flight batching of many sequences, each with its own decoder instance.
//
// One step: plan() for every active sequence, ONE merged forward over all their rows, accept()
// for each. The runtime checks what decoders do (rows, commits, emitted tokens, progress, time)
// and fails only the offending request with a named error. Engine thread only.
#pragma once

#include "daemon/cost_model.h"
#include "daemon/decode_request.h"
#include "daemon/plugin_loader.h"
#include "daemon/side_files.h"
#include "engine/forward.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "kernels/cpu/thread_pool.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct specd_seq;

namespace specd::daemon {

// Distinct settings one sequence may record (seq_note_setting, decoder ABI 1.2).
inline constexpr size_t kMaxSettings = 64;

struct RuntimeLimits {
  int32_t max_sequences = 64;        // live at once (also the KV cache's sequence slots)
  int32_t max_rows_per_seq = 1024;   // rows one sequence may add in one step
  int32_t max_idle_steps = 256;      // consecutive steps without commit or emit before "no progress"
  double max_decoder_ms = 5000.0;    // plan + accept time of one sequence in one step
  size_t kv_bytes = size_t{1} << 30;
  // Memory decoders hold through mem_alloc and buf_create, all their instances and sequences together;
  // past it those calls fail (NULL, SPECD_E_NOMEM) instead of the daemon running out.
  size_t plugin_bytes = size_t{4} << 30;
  SideFilePolicy side_files;         // where decoders' side files may come from, and their size cap
  // Time a few forwards at construction for the cost model (decoder ABI 1.2's step_cost), or read
  // them from the cache (daemon/cost_calibration.h). $SPECD_COST_CALIBRATION=off also skips it (the
  // test suites set it); without it the model starts from a prior and learns from live steps.
  bool calibrate_cost = true;
  // The decoder ABI minor the host table offers (plugin_host.h's host_api(minor)): the current one,
  // or an older one to check that decoders work with older hosts.
  uint32_t host_abi_minor = SPECD_DECODER_ABI_MINOR;
};

class DecodeRuntime {
 public:
  // A runtime for model on weights' backend when weights is given (see daemon/model_placement.h),
  // else on a CPU backend over pool. Everything passed in must outlive it.
  DecodeRuntime(const engine::Model& model, const PluginRegistry& plugins, kernels::ThreadPool& pool,
                RuntimeLimits limits = {}, const engine::ModelWeights* weights = nullptr);
  ~DecodeRuntime();

  // Start a request: finds the decoder, creates its instance with the options, begins the sequence.
  // Errors: SPECD_E_UNKNOWN_DECODER, SPECD_E_BAD_OPTION, SPECD_E_INVALID_ARG (empty prompt, bad
  // max_tokens), SPECD_E_BAD_TOKEN, SPECD_E_CONTEXT (prompt not under context_limit()),
  // SPECD_E_LIMIT (too many sequences), SPECD_E_KV_FULL (its KV reservation is taken by running
  // requests: a caller that can wait asks admission() first), or the decoder's own error from
  // create/begin. On error nothing is left behind.
  Result<int64_t> submit(DecodeRequest req, DecodeCallbacks cb);
  // Positions one sequence can hold: the model's context, or less when the KV arena is smaller.
  // Decoders see it as specd_model_info.ctx_len, so they finish with "context" there.
  int32_t context_limit() const { return info_.ctx_len; }
  // What submit() would do with req now: Wait when it would fail only because running requests
  // hold the KV blocks or sequence slots it needs (it fits an idle runtime, so it should wait),
  // Refuse when it could not run even on an idle runtime (submit() names the error), else Now.
  enum class Admission { Now, Wait, Refuse };
  Admission admission(const DecodeRequest& req) const;
  // Cancel a request: it finishes with SPECD_FINISH_CANCEL at the next step. Unknown ids are ignored.
  void cancel(int64_t id);
  // Run one step over every active sequence; finished ones get on_finished and are removed.
  void step();
  bool idle() const { return seqs_.empty(); }
  size_t active() const { return seqs_.size(); }
  // Convenience for tools and tests: submit one request and step until it ends (on_tokens may be NULL).
  Result<DecodeResult> run(const DecodeRequest& req,
                           void (*on_tokens)(int64_t, const int32_t*, int32_t, std::string_view, void*) = nullptr,
                           void* user = nullptr);

  const engine::Model& model() const { return model_; }
  const specd_model_info& model_info() const { return info_; }
  const PluginRegistry& plugins() const { return plugins_; }

  // --- used by the ABI edge (plugin_host.cpp) ---
  engine::Batch& batch() { return batch_; }
  engine::Forward& forward() { return fwd_; }
  // A tensor of the model or a side file as the forward's backend reads it: the host view itself
  // when the backend reads host memory, else a copy made on first use and kept with the runtime.
  // Errors: SPECD_E_NOMEM.
  Result<kernels::WeightView> device_weight(const kernels::WeightView& host);
  engine::KvCache& kv() { return kv_; }
  engine::Sampler& sampler() { return sampler_; }
  kernels::ThreadPool& pool() { return pool_; }
  const RuntimeLimits& limits() const { return limits_; }
  SideFiles& side_files() { return side_files_; }
  // The decoders' memory account (limits().plugin_bytes): reserve before allocating, false when the
  // bytes would pass the limit; release what was reserved when it is freed. Safe from any thread.
  bool reserve_plugin_bytes(size_t n);
  void release_plugin_bytes(size_t n) { plugin_bytes_.fetch_sub(n, std::memory_order_relaxed); }
  size_t plugin_bytes_in_use() const { return plugin_bytes_.load(std::memory_order_relaxed); }
  // KV blocks promised to live sequences (what admission counts against the cache, not what they fill yet).
  int32_t kv_reserved_blocks() const { return kv_reserved_; }
  // Take tokens from a decoder into a sequence, applying max_tokens and stops; returns how many.
  int32_t take_tokens(specd_seq* s, const int32_t* tokens, int32_t n);
  // How many of n rows a commit may store without leaving the sequence's KV reservation; a commit
  // cut short marks the sequence, which must then finish in this accept (see accept_all).
  int32_t commit_room(specd_seq* s, int32_t n);
  void finish(specd_seq* s, int32_t reason);
  void fail(specd_seq* s, int32_t code, std::string message);
  // The forward-cost model decoders read through step_cost, and the rows of the last forward.
  const CostModel& cost() const { return cost_; }
  int32_t last_step_rows() const { return last_step_rows_; }
  // The block decoder_memory (decoder ABI 1.3) hands a decoder: size bytes kept per decoder name
  // for the runtime's life, zeroed when first asked for and when asked for with another size.
  void* decoder_memory(const std::string& decoder, size_t size);

 private:
  void plan_all();
  void accept_all();
  void check_slot(specd_seq* s, int rc, const char* slot, double ms);
  void retire_finished();
  void release(specd_seq* s);
  int32_t kv_blocks_for(const DecodeRequest& req) const;
  void calibrate();
  double time_forward(int32_t rows);

  const engine::Model& model_;
  const PluginRegistry& plugins_;
  kernels::ThreadPool& pool_;
  RuntimeLimits limits_;
  engine::KvCache kv_;
  engine::Forward fwd_;
  engine::Batch batch_;
  engine::Sampler sampler_;
  SideFiles side_files_;
  specd_model_info info_{};
  std::string digest_;
  std::vector<std::unique_ptr<specd_seq>> seqs_;
  std::vector<specd_seq*> planned_;
  std::unordered_map<const void*, kernels::WeightView> device_weights_;  // device_weight's copies
  int64_t next_id_ = 1;
  std::atomic<size_t> plugin_bytes_{0};
  int32_t kv_reserved_ = 0;  // blocks promised to live sequences: the sum of their kv_quota_blocks
  CostModel cost_;
  int32_t last_step_rows_ = 0;  // rows of the last forward still held by running sequences
  int64_t steps_run_ = 0;
  std::map<std::string, std::vector<unsigned char>> decoder_memory_;  // by decoder name
};

}  // namespace specd::daemon
