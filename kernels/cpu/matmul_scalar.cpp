// Portable reference kernel: plain loops, the fallback when no SIMD path is available.
#include "kernels/cpu/matmul_impl.h"

namespace specd::kernels {
namespace {

// 8 interleaved partial sums, like a SIMD lane set: the rounding error grows with K/8, not K.
constexpr int kLanes = 8;

float reduce(const float (&acc)[kLanes], float tail) {
  float s = 0.0f;
  for (float a : acc) s += a;
  return s + tail;
}

float dot_plain(GgmlType type, const uint8_t* row, const float* x, int64_t k_len) {
  float acc[kLanes] = {};
  const int64_t k_main = k_len / kLanes * kLanes;
  for (int64_t k = 0; k < k_main; k += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += x[k + j] * weight_elem(type, row, k + j);
  }
  float tail = 0.0f;
  for (int64_t k = k_main; k < k_len; ++k) tail += x[k] * weight_elem(type, row, k);
  return reduce(acc, tail);
}

float dot_q8_0(const uint8_t* row, const float* x, int64_t k_len) {
  float acc[kLanes] = {};
  for (int64_t b = 0; b < k_len / 32; ++b) {
    const uint8_t* blk = row + b * 34;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const float d = f16_bits_to_f32(dh);
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    for (int k = 0; k < 32; ++k) acc[k % kLanes] += x[b * 32 + k] * (d * static_cast<float>(q[k]));
  }
  return reduce(acc, 0.0f);
}

}  // namespace

void matmul_range_scalar(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                         int64_t ldy, int64_t n0, int64_t n1) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = base + static_cast<size_t>(n) * w.row_bytes;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * ldx;
      y[i * ldy + n] = w.type == GgmlType::Q8_0 ? dot_q8_0(row, xi, w.cols) : dot_plain(w.type, row, xi, w.cols);
    }
  }
}

}  // namespace specd::kernels
