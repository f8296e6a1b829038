// Element conversions (f16/bf16 <-> f32), Q8_0 quantization and weight-row expansion.
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/quant_k.h"

#include <cmath>
#include <cstring>

namespace specd::kernels {

float f16_to_f32(uint16_t h) { return f16_bits_to_f32(h); }

// Integer rounding so the result does not depend on the FPU's rounding or flush modes.
uint16_t f32_to_f16(float f) {
  uint32_t x = f32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u) {  // Inf stays Inf; NaN stays NaN (quieted, top payload bits kept)
    return x == 0x7F800000u ? (sign | 0x7C00u) : static_cast<uint16_t>(sign | 0x7E00u | ((x >> 13) & 0x3FFu));
  }
  if (x >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds (ties to even) to Inf
  if (x < 0x38800000u) {                         // below 2^-14: a half subnormal or zero
    const uint32_t exp = x >> 23;
    const uint32_t shift = 126 - exp;            // value / 2^-24 = mant24 >> shift
    if (shift > 24) return sign;                 // < 2^-25, or a float subnormal: rounds to 0
    const uint32_t mant = (x & 0x7FFFFFu) | 0x800000u;
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into the smallest normal: right
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = (x >> 13) - (112u << 10);  // rebias the exponent, keep 10 mantissa bits
  const uint32_t rem = x & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry bumps the exponent: right
  return static_cast<uint16_t>(sign | h);
}

float bf16_to_f32(uint16_t h) { return bf16_bits_to_f32(h); }

uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_to_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);  // overflow to Inf is right
}

// llama.cpp's quantize_row_q8_0_ref: d = amax/127 stored as f16, q = roundf(x * (1/d)).
// It multiplies by the reciprocal rather than dividing; we do the same so blocks match bit for bit.
void quantize_q8_0(const float* x, int64_t n, void* out) {
  auto* blocks = static_cast<specd::BlockQ8_0*>(out);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float av = std::fabs(xb[j]);
      amax = amax > av ? amax : av;  // llama.cpp's MAX(), NaN handling included
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) blocks[b].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
  }
}

void weight_row_to_f32(const WeightView& w, int64_t j, float* out) {
  const auto* row = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(j) * w.row_bytes;
  if (ggml_type_quantized_act(w.type)) {
    dequantize_row(w.type, row, w.cols, out);
    return;
  }
  if (w.type == GgmlType::Q8_0) {
    const auto* blocks = reinterpret_cast<const specd::BlockQ8_0*>(row);
    for (int64_t b = 0; b < w.cols / 32; ++b) {
      specd::BlockQ8_0 blk;
      std::memcpy(&blk, blocks + b, sizeof blk);  // rows need not be 2-byte aligned
      const float d = f16_bits_to_f32(blk.d);
      for (int i = 0; i < 32; ++i) out[b * 32 + i] = d * static_cast<float>(blk.qs[i]);
    }
    return;
  }
  for (int64_t k = 0; k < w.cols; ++k) out[k] = weight_elem(w.type, row, k);
}

}  // namespace specd::kernels
