// RMSNorm, RoPE, SwiGLU and residual adds, vectorised by target clones (AVX-512/AVX2/baseline).
#include "engine/row_ops.h"

#include <cmath>

namespace specd::engine {

#define SPECD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

SPECD_CLONES void rms_norm(const float* x, const float* gain, int32_t n, float eps, float* out) {
  float ss = 0.0f;
  for (int32_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int32_t i = 0; i < n; ++i) out[i] = x[i] * scale * gain[i];
}

SPECD_CLONES void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

SPECD_CLONES void add_into(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

Rope::Rope(const ModelConfig& cfg)
    : layout_(cfg.rope), head_dim_(cfg.head_dim), rope_dims_(cfg.rope_dims) {
  // Same frequencies as llama.cpp: theta_i = pos * base^(-2i/rope_dims).
  for (int32_t i = 0; i < rope_dims_ / 2; ++i)
    inv_freq_.push_back(static_cast<float>(std::pow(static_cast<double>(cfg.rope_theta),
                                                    -2.0 * i / static_cast<double>(rope_dims_))));
}

void Rope::apply(float* x, int32_t n_heads, int32_t pos) const {
  const int32_t half = rope_dims_ / 2;
  float cs[256], sn[256];  // rope_dims/2 ≤ head_dim/2; heads wider than 512 are rejected at load
  for (int32_t i = 0; i < half; ++i) {
    const double a = static_cast<double>(pos) * static_cast<double>(inv_freq_[static_cast<size_t>(i)]);
    cs[i] = static_cast<float>(std::cos(a));
    sn[i] = static_cast<float>(std::sin(a));
  }
  for (int32_t h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim_;
    for (int32_t i = 0; i < half; ++i) {
      const int32_t a = layout_ == RopeLayout::Adjacent ? 2 * i : i;
      const int32_t b = layout_ == RopeLayout::Adjacent ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

}  // namespace specd::engine
