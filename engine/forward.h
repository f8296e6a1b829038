// Forward: runs the model over a Batch, writing logits/hidden rows and per-call K/V scratch.
//
// docs: ARCHITECTURE.md §3. After run(), the K/V of every row sit in scratch; commit() appends the
// named rows of one sequence to its cache at consecutive positions; the next run() drops the rest.
#pragma once

#include "engine/batch.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/row_ops.h"
#include "kernels/cpu/thread_pool.h"

#include <memory>

#include <span>
#include <vector>

namespace specd::engine {

class Forward {
 public:
  Forward(const Model& model, KvCache& kv, kernels::ThreadPool& pool);

  // Errors: SPECD_E_BAD_TOKEN (token outside [0, vocab)), SPECD_E_INVALID_ARG (unknown sequence,
  // visibility across sequences), SPECD_E_CONTEXT (position ≥ context length).
  Status run(const Batch& batch);

  // Outputs of the last run(), indexed by Row::out_index: [n_outputs][vocab] and [n_outputs][dim].
  std::span<const float> logits(int32_t out_index) const;
  std::span<const float> hidden(int32_t out_index) const;

  // Size scratch for calls of up to rows rows / outs outputs now, so later calls don't allocate.
  void reserve(int32_t rows, int32_t outs);

  // Append rows (indices into the last batch, all of sequence seq) to seq's cache in this order.
  // Each row's position must equal the cache length at its turn (consecutive positions).
  // Errors: SPECD_E_INVALID_ARG (bad row, other sequence, position gap), SPECD_E_KV_FULL.
  Status commit(SeqId seq, std::span<const int32_t> rows);

 private:
  const Model& model_;
  KvCache& kv_;
  kernels::ThreadPool& pool_;
  Status validate(const Batch& batch) const;
  void layer(const Batch& batch, int32_t l);
  void attention(const Batch& batch, int32_t l, const float* k, const float* v);
  void output(const Batch& batch);

  struct Scratch;  // grow-only buffers, see forward.cpp
  std::shared_ptr<Scratch> s_;
  Rope rope_;
  const Batch* last_ = nullptr;
};

}  // namespace specd::engine
