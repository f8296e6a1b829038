// RMSNorm, RoPE, SwiGLU, adds, log-softmax and top-k, vectorised by target clones (AVX-512/AVX2/baseline).
#include "kernels/cpu/row_ops.h"

#include <algorithm>
#include <cmath>

namespace specd::kernels {

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

SPECD_CLONES void silu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void log_softmax_row(float* v, int32_t cols) {
  const float mx = *std::max_element(v, v + cols);
  double sum = 0.0;
  for (int32_t i = 0; i < cols; ++i) sum += std::exp(static_cast<double>(v[i] - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  for (int32_t i = 0; i < cols; ++i) v[i] -= lse;
}

void topk_row(const float* v, int32_t cols, int32_t k, int32_t* out, float* vals) {
  // Insertion into a sorted top-k list: k is small (beam widths), cols up to the vocab.
  int32_t n = 0;
  for (int32_t i = 0; i < cols; ++i) {
    int32_t at = n;
    while (at > 0 && v[i] > v[out[at - 1]]) --at;
    if (at >= k) continue;
    for (int32_t j = std::min(n, k - 1); j > at; --j) out[j] = out[j - 1];
    out[at] = i;
    n = std::min(n + 1, k);
  }
  for (int32_t j = 0; j < k; ++j) vals[j] = v[out[j]];
}

Rope::Rope(const RopeParams& p) : p_(p) {
  // Same frequencies as llama.cpp: theta_i = pos * freq_scale * base^(-2i/rope_dims) / freq_factor_i.
  for (int32_t i = 0; i < p_.rope_dims / 2; ++i) {
    double f = p_.freq_scale * std::pow(static_cast<double>(p_.theta), -2.0 * i / static_cast<double>(p_.rope_dims));
    if (p_.freq_factors) f /= static_cast<double>(p_.freq_factors[i]);
    inv_freq_.push_back(static_cast<float>(f));
  }
}

void Rope::apply(float* x, int32_t n_heads, int32_t pos) const {
  const int32_t half = p_.rope_dims / 2;
  float cs[256], sn[256];  // rope_dims/2 ≤ head_dim/2; heads wider than 512 are rejected at load
  for (int32_t i = 0; i < half; ++i) {
    const double a = static_cast<double>(pos) * static_cast<double>(inv_freq_[static_cast<size_t>(i)]);
    cs[i] = static_cast<float>(std::cos(a));
    sn[i] = static_cast<float>(std::sin(a));
  }
  for (int32_t h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * p_.head_dim;
    for (int32_t i = 0; i < half; ++i) {
      const int32_t a = p_.layout == RopeLayout::Adjacent ? 2 * i : i;
      const int32_t b = p_.layout == RopeLayout::Adjacent ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

}  // namespace specd::kernels
