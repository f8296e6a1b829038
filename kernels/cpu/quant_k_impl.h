// Helpers shared by the K-type quantizers, dequantizers and every ISA's dot kernels.
//
// static inline on purpose (see matmul_impl.h): the per-ISA files include this with their own -m
// flags, so nothing here may become a weak symbol the linker could share between them.
#pragma once

#include "kernels/ggml_type.h"

#include <cstdint>
#include <cstring>

namespace specd::kernels {

// llama.cpp's nearest_int: round half to even through the 1.5 * 2^23 trick, valid for |f| < 2^22.
// Its quantizers use it instead of lrintf, and so do ours, so ties round the same way.
static inline int nearest_int(float f) {
  const float v = f + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

// The eight 6-bit scales and minimums of a Q4_K/Q5_K block (llama.cpp's get_scale_min_k4 for j = 0..7):
// bytes 0-3 hold scales 0-3 (low 6 bits), 4-7 minimums 0-3; 8-11 the low nibbles of scale/min 4-7,
// whose top two bits are the top bits of bytes 0-7. Done on 32-bit words (as llama.cpp's kernels
// do): it runs once per 256 weights in every product, so its cost shows.
static inline void unpack_scale_min_k4(const uint8_t* q, uint8_t* sc, uint8_t* mn) {
  uint32_t u[3];
  std::memcpy(u, q, 12);
  constexpr uint32_t k6 = 0x3F3F3F3Fu, k4 = 0x0F0F0F0Fu, k2 = 0x03030303u;
  const uint32_t out[4] = {u[0] & k6, (u[2] & k4) | (((u[0] >> 6) & k2) << 4), u[1] & k6,
                           ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4)};
  std::memcpy(sc, out, 8);
  std::memcpy(mn, out + 2, 8);
}

// Element e (0..255) of a Q6_K block as its unsigned 6-bit value (0..63). Each 128 elements use 64 ql
// and 32 qh bytes: element 32c + l (c = 0..3) takes the low (c = 0, 1) or high (c = 2, 3) nibble of
// ql[l + 32 (c & 1)] and bits 2c..2c+1 of qh[l].
static inline int q6_k_elem(const uint8_t* ql, const uint8_t* qh, int e) {
  const int half = e / 128, r = e % 128, c = r / 32, l = r % 32;
  const uint8_t lo = ql[64 * half + l + 32 * (c & 1)];
  const int nib = c < 2 ? (lo & 0xF) : (lo >> 4);
  return nib | (((qh[32 * half + l] >> (2 * c)) & 3) << 4);
}

}  // namespace specd::kernels
