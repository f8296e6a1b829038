// Attention of one call's rows over their sequence's committed KV plus their visible in-call rows.
#pragma once

#include "engine/batch.h"
#include "engine/kv_cache.h"
#include "engine/model.h"

#include <cstdint>

namespace specd::engine {

struct AttentionInputs {
  const ModelConfig* cfg = nullptr;
  const Batch* batch = nullptr;
  const KvCache* kv = nullptr;
  int32_t layer = 0;
  const float* q = nullptr;   // [rows][q_dim], RoPE applied
  const float* k = nullptr;   // [rows][kv_dim] this call's keys for this layer, RoPE applied
  const float* v = nullptr;   // [rows][kv_dim]
  float* out = nullptr;       // [rows][q_dim]
};

// Outputs of the query heads that share KV head `kv_head`, for row `row`.
// scratch holds ≥ (committed length + batch size) floats.
void attend_group(const AttentionInputs& in, int32_t row, int32_t kv_head, float* scratch);

}  // namespace specd::engine
