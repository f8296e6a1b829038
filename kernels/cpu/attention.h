// CPU attention: one call's rows over their sequence's committed KV plus their visible in-call rows.
#pragma once

#include "kernels/backend.h"

#include <cstdint>

namespace specd::kernels {

// Query heads of a GQA group taken together per pass over the keys and values: each key and value
// vector is read once for up to this many heads.
constexpr int32_t kHeadsPerPass = 16;

// Outputs of the query heads that share KV head kv_head, for step row `row` (AttentionArgs, the
// step's tiles and block tables). scratch holds ≥ min(group size, kHeadsPerPass) x (the row's kv_len
// + its tile's n_rows) floats.
void attend_group(const AttentionArgs& a, const StepMeta& m, int32_t row, int32_t kv_head, float* scratch);

}  // namespace specd::kernels
