// The 256-bit pieces the AVX2 and AVX-512 K-quant block sums share: horizontal sums, the
// high-bit merge of a level, and the per-block terms (fp16 scales, the mins and Q6_K's offset).
//
// Included only by matmul_kquant_avx2.cpp and matmul_kquant_avx512.cpp, each compiled with its own
// ISA flags: everything is in an unnamed namespace, so each gets its own copy built for its ISA
// (one shared out-of-line copy could be the AVX-512 build, called on an AVX2-only CPU).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace specd::kernels {
namespace {

inline int hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Bits (shift, shift+1 for mask 3) of each byte of h, moved to bits 4-5: the high part of a level.
inline __m256i high_bits(__m256i h, int shift, int mask) {
  const __m256i b = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(static_cast<char>(mask)));
  return _mm256_slli_epi16(b, 4);
}

// The per-block terms of kq::dot_row's Ops, the same on both ISAs.
struct Avx2BlockTerms {
  static float half(uint16_t h) { return _cvtsh_ss(h); }  // exact, as the scalar decoder
  static int mins(const int16_t* bsums, const uint8_t* mn) {
    const __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
    const __m256i pairs = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));  // m0 m0 m1 m1 ...
    return hsum8(_mm256_madd_epi16(load32(bsums), pairs));
  }
  static int q6_off(const int16_t* bsums, const int8_t* sc) {
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    return hsum8(_mm256_madd_epi16(load32(bsums), s16));
  }
};

}  // namespace
}  // namespace specd::kernels
