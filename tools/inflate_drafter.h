// Carrying a ReDrafter drafter over to an inflated model (BENCHMARKS.md §2.2, last point).
#pragma once

#include "engine/gguf_reader.h"
#include "kernels/result.h"

#include <functional>
#include <string>
#include <vector>

namespace specd::tools {

// out[D] = R · (v ⊙ g) for a small-space vector v [d] (g may be NULL): the inflation's embedding.
using Lift = std::function<void(const double* v, const double* g, float* out)>;

// Writes to out a drafter for the inflated model big_model_path that drafts exactly what `drafter`
// drafts for the small model: rnn_w reads R·e(y), so it becomes rnn_w·Rᵀ; the big model's final
// hidden state is R·(h ⊘ g_final), so an input projection (or the existing one, folded) maps it
// back to h = g_final ⊙ Rᵀ·h_big. out_norm is the small model's final-norm gain g_final.
// Errors: SPECD_E_BAD_MODEL (not a drafter of the small model's width), SPECD_E_IO.
Status inflate_drafter(const engine::GgufFile& drafter, const Lift& lift, int64_t small_dim, int64_t big_dim,
                       const std::vector<double>& out_norm, const std::string& big_model_path, const std::string& out);

}  // namespace specd::tools
