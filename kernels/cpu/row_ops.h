// Element-wise row operations on host f32 rows: RMSNorm, RoPE, SwiGLU, adds, and the plugin ABI's
// softmax / top-k. The CPU backend's ops; each row's result depends on that row alone.
#pragma once

#include "kernels/backend.h"

#include <cstdint>
#include <vector>

namespace specd::kernels {

// out = x / sqrt(mean(x²) + eps) ⊙ gain, n elements.
void rms_norm(const float* x, const float* gain, int32_t n, float eps, float* out);
// out[i] = silu(gate[i]) * up[i], written over gate.
void silu_mul(float* gate, const float* up, int64_t n);
// x[i] += y[i]
void add_into(float* x, const float* y, int64_t n);
// x[i] = silu(x[i])
void silu_inplace(float* x, int64_t n);
// One row of cols floats becomes its log-softmax (sum in double), in place.
void log_softmax_row(float* x, int32_t cols);
// The k largest of x[0..cols) into ids/vals, descending, lowest index first on ties.
void topk_row(const float* x, int32_t cols, int32_t k, int32_t* ids, float* vals);

// Rotary embedding: n_heads heads of head_dim in x, rotated at absolute position pos.
class Rope {
 public:
  explicit Rope(const RopeParams& p);
  const RopeParams& params() const { return p_; }
  void apply(float* x, int32_t n_heads, int32_t pos) const;

 private:
  RopeParams p_;
  std::vector<float> inv_freq_;  // rope_dims/2 frequencies
};

}  // namespace specd::kernels
