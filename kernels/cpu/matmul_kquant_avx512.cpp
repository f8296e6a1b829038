// AVX-512 VNNI integer block sums for the quantized-activation products, 64 elements per step: for the
// K types vpmaddubsw then vpdpwssd by the sub-block scales (one instruction fewer per step than
// vpdpbusd + vpmulld, and no 10-cycle multiply); for Q4_0 vpdpbusd. The float side is kq::dot_row's,
// shared with the other paths.
#include "kernels/cpu/matmul_kquant.h"

// GCC 12.2's _mm512_undefined_*() warning (see matmul_avx512.cpp).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/matmul_kquant_avx2_parts.h"

namespace specd::kernels {
namespace {

__m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

// acc += 64 levels times 64 activations: products paired into int16 by vpmaddubsw (at most
// 2 * 63 * 127, no saturation), then each int16 times its sub-block's scale, pairwise into int32
// (vpdpwssd). scale16 holds one int16 scale per int16 lane.
__m512i scaled_dot64(__m512i acc, __m512i q, const int8_t* x, __m512i scale16) {
  return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(q, _mm512_loadu_si512(x)), scale16);
}

// Scales s0 for int16 lanes 0-15 (elements 0-31), s1 for 16-31 (elements 32-63).
__m512i two_scales(int s0, int s1) {
  return join(_mm256_set1_epi16(static_cast<int16_t>(s0)), _mm256_set1_epi16(static_cast<int16_t>(s1)));
}

struct Avx512Ops : Avx2BlockTerms {
  static int q4_0(const uint8_t* qs, const int8_t* x) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    const __m256i xv = load32(x);
    const __m256i zero = _mm256_setzero_si256();
    // sum q x - 8 sum x, both with vpdpbusd (unsigned x signed, four products per lane).
    return hsum8(_mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, xv), _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), xv)));
  }
  static int q4_k(const uint8_t* qs, const int8_t* x, const uint8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m512i acc = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      const __m512i q = join(_mm256_and_si256(raw, m4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
      acc = scaled_dot64(acc, q, x + 64 * p, two_scales(sc[2 * p], sc[2 * p + 1]));
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
      acc = scaled_dot64(acc, join(lo, hi), x + 64 * p, two_scales(sc[2 * p], sc[2 * p + 1]));
    }
    return _mm512_reduce_add_epi32(acc);
  }
  static int q6_k(const uint8_t* ql, const uint8_t* qh, const int8_t* x, const int8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    // All 16 scales as int16; lane l of a 64-element step takes group 4 (step) + l / 8.
    const __m512i s16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))));
    const __m512i eighths = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7,
                         6, 5, 4, 3, 2, 1, 0), 3);
    __m512i acc = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = load32(ql + 64 * half), l1 = load32(ql + 64 * half + 32), h = load32(qh + 32 * half);
      const __m512i qa = join(_mm256_or_si256(_mm256_and_si256(l0, m4), high_bits(h, 0, 3)),
                              _mm256_or_si256(_mm256_and_si256(l1, m4), high_bits(h, 2, 3)));
      const __m512i qb = join(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), high_bits(h, 4, 3)),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), high_bits(h, 6, 3)));
      for (int c = 0; c < 2; ++c) {
        const __m512i idx = _mm512_add_epi16(eighths, _mm512_set1_epi16(static_cast<int16_t>(8 * half + 4 * c)));
        acc = scaled_dot64(acc, c == 0 ? qa : qb, x + 128 * half + 64 * c, _mm512_permutexvar_epi16(idx, s16));
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
