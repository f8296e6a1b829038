// Forward: runs the model over a Batch on a backend, writing logits/hidden rows and per-call K/V scratch.
//
// docs: ARCHITECTURE.md §3, §8. run() builds the call's StepMeta once (rows' positions and output
// slots, per sequence its rows, KV length, block table and visibility tile), hands it to the backend
// and enqueues every layer's ops; the backend's sync() is the one wait point per call. After run(),
// the K/V of every row sit in scratch; commit() appends the named rows of one sequence to its cache
// at consecutive positions; the next run() drops the rest. The cache's storage is one backend
// buffer (MemUse::Kv) this object allocates; activations are grow-only backend scratch.
#pragma once

#include "engine/batch.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/model_weights.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

#include <memory>
#include <span>
#include <vector>

namespace specd::engine {

class Forward {
 public:
  // A forward of model on weights' backend when weights is given (model's weights, uploaded with
  // ModelWeights::upload), else on a CPU backend of its own over pool. model, kv, pool and weights
  // (and its backend) must outlive it.
  Forward(const Model& model, KvCache& kv, kernels::ThreadPool& pool, const ModelWeights* weights = nullptr);
  ~Forward();
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

  // Errors: SPECD_E_BAD_TOKEN (token outside [0, vocab)), SPECD_E_INVALID_ARG (unknown sequence,
  // visibility across sequences), SPECD_E_CONTEXT (position ≥ context length), SPECD_E_NOMEM (KV
  // storage or scratch past its budget; the KV storage is allocated at construction and its error
  // returned by every run()), and the backend's device errors from sync().
  Status run(const Batch& batch);

  // Outputs of the last run(), indexed by Row::out_index: [n_outputs][vocab] and [n_outputs][dim].
  std::span<const float> logits(int32_t out_index) const;
  std::span<const float> hidden(int32_t out_index) const;

  // Size scratch for calls of up to rows rows / outs outputs now, so later calls don't allocate.
  // Errors: SPECD_E_NOMEM past the scratch budget.
  Status reserve(int32_t rows, int32_t outs);

  // Append rows (indices into the last batch, all of sequence seq) to seq's cache in this order.
  // Each row's position must equal the cache length at its turn (consecutive positions).
  // Errors: SPECD_E_INVALID_ARG (bad row, other sequence, position gap), SPECD_E_KV_FULL.
  Status commit(SeqId seq, std::span<const int32_t> rows);

  // Copy position pos of seq's committed layer-l K and V (kv_dim floats each) to host memory; waits.
  // Errors: SPECD_E_INVALID_ARG (unknown sequence, uncommitted position, bad layer), the backend's.
  Status read_kv(SeqId seq, int32_t layer, int32_t pos, float* k, float* v) const;

  // The metadata of the last run() (valid until the next).
  const kernels::StepMeta& step() const { return meta_; }
  kernels::Backend& backend() const { return weights_->backend(); }

 private:
  void init();
  Status validate(const Batch& batch) const;
  void build_step(const Batch& batch);
  void layer(int32_t l);
  void output();

  std::unique_ptr<kernels::Backend> own_backend_;     // the CPU backend of the first constructor
  std::unique_ptr<ModelWeights> own_weights_;
  const ModelWeights* weights_ = nullptr;
  const Model& model_;
  KvCache& kv_;
  Status init_;                  // KV storage allocation, returned by run() when it failed
  float* kv_storage_ = nullptr;  // MemUse::Kv, kv_.storage_bytes() long
  struct Scratch;                // grow-only buffers, see forward.cpp
  std::unique_ptr<Scratch> s_;
  kernels::StepMeta meta_;
  std::vector<int32_t> commit_slots_;
  const Batch* last_ = nullptr;
};

}  // namespace specd::engine
