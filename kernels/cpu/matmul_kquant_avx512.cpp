// AVX-512 VNNI integer block sums for the quantized-activation products: vpdpbusd (unsigned weight
// level x signed activation, four products into each int32 lane), then vpmulld by the sub-block
// scale, 64 elements per step. The float side is kq::dot_row's, shared with the other paths.
#include "kernels/cpu/matmul_kquant.h"

// GCC 12.2's _mm512_undefined_*() warning (see matmul_avx512.cpp).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace specd::kernels {
namespace {

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
__m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

__m256i high_bits(__m256i h, int shift, int mask) {
  const __m256i b = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(static_cast<char>(mask)));
  return _mm256_slli_epi16(b, 4);
}

// 64 levels (lo: elements 0-31, hi: 32-63) times 64 activations; lanes 0-7 scaled by s0, 8-15 by s1.
__m512i scaled_dot64(__m256i lo, __m256i hi, const int8_t* x, int s0, int s1) {
  const __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), join(lo, hi), _mm512_loadu_si512(x));
  return _mm512_mullo_epi32(dp, join(_mm256_set1_epi32(s0), _mm256_set1_epi32(s1)));
}

struct Avx512Ops {
  static int q4_0(const uint8_t* qs, const int8_t* x) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    const __m256i xv = load32(x);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i s = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, xv), _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), xv));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    return _mm_cvtsi128_si32(t);
  }
  static int q4_k(const uint8_t* qs, const int8_t* x, const uint8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m512i acc = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      acc = _mm512_add_epi32(acc, scaled_dot64(_mm256_and_si256(raw, m4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4),
                                               x + 64 * p, sc[2 * p], sc[2 * p + 1]));
    }
    return _mm512_reduce_add_epi32(acc);
  }
  static int q5_k(const uint8_t* qs, const uint8_t* qh, const int8_t* x, const uint8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i h = load32(qh);
    __m512i acc = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(raw, m4), high_bits(h, 2 * p, 1));
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), high_bits(h, 2 * p + 1, 1));
      acc = _mm512_add_epi32(acc, scaled_dot64(lo, hi, x + 64 * p, sc[2 * p], sc[2 * p + 1]));
    }
    return _mm512_reduce_add_epi32(acc);
  }
  static int q6_k(const uint8_t* ql, const uint8_t* qh, const int8_t* x, const int8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m128i sc16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
    const __m128i quad = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512i acc = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = load32(ql + 64 * half), l1 = load32(ql + 64 * half + 32), h = load32(qh + 32 * half);
      const __m512i qa = join(_mm256_or_si256(_mm256_and_si256(l0, m4), high_bits(h, 0, 3)),
                              _mm256_or_si256(_mm256_and_si256(l1, m4), high_bits(h, 2, 3)));
      const __m512i qb = join(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), high_bits(h, 4, 3)),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), high_bits(h, 6, 3)));
      for (int c = 0; c < 2; ++c) {
        // Lane i of this 64-element step covers group 8 half + 4 c + i / 4.
        const __m128i idx = _mm_add_epi8(quad, _mm_set1_epi8(static_cast<char>(8 * half + 4 * c)));
        const __m512i scv = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc16, idx));
        const __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c == 0 ? qa : qb, _mm512_loadu_si512(x + 128 * half + 64 * c));
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(dp, scv));
      }
    }
    return _mm512_reduce_add_epi32(acc);
  }
};

}  // namespace

void matmul_range_kq_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                            int64_t n0, int64_t n1) {
  kq::range<Avx512Ops>(w, x, ldx, m, y, ldy, n0, n1);
}

}  // namespace specd::kernels
