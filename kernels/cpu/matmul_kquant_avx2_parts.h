// The 256-bit pieces the AVX2 and AVX-512 K-quant block sums share: the transposing sum of eight
// vectors, the high-bit merge of a level, and the per-block terms (the mins and Q6_K's offset).
//
// Included only by matmul_kquant_avx2.cpp and matmul_kquant_avx512.cpp, each compiled with its own
// ISA flags: everything is in an unnamed namespace, so each gets its own copy built for its ISA
// (one shared out-of-line copy could be the AVX-512 build, called on an AVX2-only CPU).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace specd::kernels {
namespace {

// Eight vectors of 8 int32 to their eight sums, in order: one transposing tree.
inline __m256i sum8x8(const __m256i* a) {
  __m256i t[4];
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
  }
  const __m256i u0 = _mm256_add_epi32(_mm256_unpacklo_epi64(t[0], t[1]), _mm256_unpackhi_epi64(t[0], t[1]));
  const __m256i u1 = _mm256_add_epi32(_mm256_unpacklo_epi64(t[2], t[3]), _mm256_unpackhi_epi64(t[2], t[3]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Bits (shift, shift+1 for mask 3) of each byte of h, moved to bits 4-5: the high part of a level.
inline __m256i high_bits(__m256i h, int shift, int mask) {
  const __m256i b = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(static_cast<char>(mask)));
  return _mm256_slli_epi16(b, 4);
}

// The per-block terms of kq::dot_row's Ops (the mins and Q6_K's offset), unreduced: 8 int32 lanes
// whose total is the term.
struct Avx2BlockTerms {
  static __m256i mins(const int16_t* bsums, const uint8_t* mn) {
    const __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
    const __m256i pairs = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));  // m0 m0 m1 m1 ...
    return _mm256_madd_epi16(load32(bsums), pairs);
  }
  static __m256i q6_off(const int16_t* bsums, const int8_t* sc) {
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    return _mm256_madd_epi16(load32(bsums), s16);
  }
};

}  // namespace
}  // namespace specd::kernels
