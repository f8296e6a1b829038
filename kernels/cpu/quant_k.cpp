// Dequantization of Q4_0/Q4_K/Q5_K/Q6_K rows and the Q8_K activation quantizer (llama.cpp's layouts).
#include "kernels/cpu/quant_k.h"

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/quant_k_impl.h"

#include <cmath>
#include <cstring>

namespace specd::kernels {
namespace {

// Blocks are copied out before use: rows in a mapped file need not be aligned to the block.
template <class B>
B load_block(const uint8_t* p, int64_t i) {
  B b;
  std::memcpy(&b, p + static_cast<size_t>(i) * sizeof(B), sizeof(B));
  return b;
}

void dequant_q4_0(const uint8_t* row, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const auto b = load_block<BlockQ4_0>(row, i);
    const float d = f16_bits_to_f32(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0xF) - 8) * d;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

// Q4_K and Q5_K: each 64 elements are two sub-blocks; the low nibbles of 32 qs bytes are the first,
// the high nibbles the second; Q5_K's qh bit 2s (2s+1) is the fifth bit of the first (second).
template <class B>
void dequant_k45(const uint8_t* row, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<B>(row, i);
    const float d = f16_bits_to_f32(b.d), dmin = f16_bits_to_f32(b.dmin);
    uint8_t sc[8], mn[8];
    unpack_scale_min_k4(b.scales, sc, mn);
    for (int s = 0; s < 4; ++s, y += 64) {
      const float d1 = d * sc[2 * s], m1 = dmin * mn[2 * s];
      const float d2 = d * sc[2 * s + 1], m2 = dmin * mn[2 * s + 1];
      const uint8_t* q = b.qs + 32 * s;
      for (int l = 0; l < 32; ++l) {
        int lo = q[l] & 0xF, hi = q[l] >> 4;
        if constexpr (sizeof(B) == sizeof(BlockQ5_K)) {
          const uint8_t* qh = reinterpret_cast<const uint8_t*>(&b) + offsetof(BlockQ5_K, qh);
          lo += ((qh[l] >> (2 * s)) & 1) << 4;
          hi += ((qh[l] >> (2 * s + 1)) & 1) << 4;
        }
        y[l] = d1 * static_cast<float>(lo) - m1;
        y[l + 32] = d2 * static_cast<float>(hi) - m2;
      }
    }
  }
}

void dequant_q6_K(const uint8_t* row, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ6_K>(row, i);
    const float d = f16_bits_to_f32(b.d);
    for (int e = 0; e < kQK; ++e) {
      const int q = q6_k_elem(b.ql, b.qh, e);
      y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q - 32);
    }
    y += kQK;
  }
}

}  // namespace

void dequantize_row(GgmlType type, const void* row, int64_t n, float* out) {
  const auto* p = static_cast<const uint8_t*>(row);
  switch (type) {
    case GgmlType::Q4_0:
      return dequant_q4_0(p, n / 32, out);
    case GgmlType::Q4_K:
      return dequant_k45<BlockQ4_K>(p, n / kQK, out);
    case GgmlType::Q5_K:
      return dequant_k45<BlockQ5_K>(p, n / kQK, out);
    case GgmlType::Q6_K:
      return dequant_q6_K(p, n / kQK, out);
    default:
      return;
  }
}

void quantize_q8_K(const float* x, int64_t n, void* out) {
  auto* y = static_cast<BlockQ8_K*>(out);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    BlockQ8_K& b = y[i];
    if (amax == 0.0f) {
      std::memset(&b, 0, sizeof b);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK; ++j) {
      const int v = nearest_int(iscale * x[j]);
      b.qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
      b.bsums[g] = static_cast<int16_t>(sum);
    }
    b.d = 1.0f / iscale;
  }
}

}  // namespace specd::kernels
