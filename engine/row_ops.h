// Element-wise row operations of the transformer: RMSNorm, RoPE, SwiGLU, residual add.
#pragma once

#include "engine/model.h"

#include <cstdint>

namespace specd::engine {

// out = x / sqrt(mean(x²) + eps) ⊙ gain, n elements.
void rms_norm(const float* x, const float* gain, int32_t n, float eps, float* out);
// out[i] = silu(gate[i]) * up[i], written over gate.
void silu_mul(float* gate, const float* up, int64_t n);
// x[i] += y[i]
void add_into(float* x, const float* y, int64_t n);

// Rotary embedding for one row: n_heads heads of head_dim in x, rotated at absolute position pos.
class Rope {
 public:
  explicit Rope(const ModelConfig& cfg);
  void apply(float* x, int32_t n_heads, int32_t pos) const;

 private:
  RopeLayout layout_;
  int32_t head_dim_, rope_dims_;
  std::vector<float> inv_freq_;  // rope_dims/2 frequencies
};

}  // namespace specd::engine
