// AVX2 integer block sums for the quantized-activation products: vpmaddubsw (unsigned weight level x
// signed activation, pairs to int16: at most 2 * 63 * 127, no saturation) then vpmaddwd by the
// sub-block scale. The float side is kq::dot_row's, shared with the other paths.
#include "kernels/cpu/matmul_kquant.h"
#include "kernels/cpu/matmul_kquant_avx2_parts.h"

#include <immintrin.h>

namespace specd::kernels {
namespace {

// 32 unsigned levels times 32 activations, each 16-element half times its own int16 scale.
__m256i scaled_dot(__m256i q, const int8_t* x, int sc_lo, int sc_hi) {
  const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(sc_hi)), _mm_set1_epi16(static_cast<int16_t>(sc_lo)));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, load32(x)), scv);
}

struct Avx2Ops : Avx2BlockTerms {
  static int q4_0(const uint8_t* qs, const int8_t* x) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    const __m256i xv = load32(x);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv));
    return hsum8(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
  static int q4_k(const uint8_t* qs, const int8_t* x, const uint8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256i acc = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      acc = _mm256_add_epi32(acc, scaled_dot(_mm256_and_si256(raw, m4), x + 64 * p, sc[2 * p], sc[2 * p]));
      acc = _mm256_add_epi32(acc, scaled_dot(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), x + 64 * p + 32,
                                             sc[2 * p + 1], sc[2 * p + 1]));
    }
    return hsum8(acc);
  }
  static int q5_k(const uint8_t* qs, const uint8_t* qh, const int8_t* x, const uint8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i h = load32(qh);
    __m256i acc = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(raw, m4), high_bits(h, 2 * p, 1));
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), high_bits(h, 2 * p + 1, 1));
      acc = _mm256_add_epi32(acc, scaled_dot(lo, x + 64 * p, sc[2 * p], sc[2 * p]));
      acc = _mm256_add_epi32(acc, scaled_dot(hi, x + 64 * p + 32, sc[2 * p + 1], sc[2 * p + 1]));
    }
    return hsum8(acc);
  }
  static int q6_k(const uint8_t* ql, const uint8_t* qh, const int8_t* x, const int8_t* sc) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256i acc = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = load32(ql + 64 * half), l1 = load32(ql + 64 * half + 32), h = load32(qh + 32 * half);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, m4), high_bits(h, 0, 3)),
          _mm256_or_si256(_mm256_and_si256(l1, m4), high_bits(h, 2, 3)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), high_bits(h, 4, 3)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), high_bits(h, 6, 3))};
      for (int c = 0; c < 4; ++c) {
        const int g = 8 * half + 2 * c;
        acc = _mm256_add_epi32(acc, scaled_dot(q[c], x + 128 * half + 32 * c, sc[g], sc[g + 1]));
      }
    }
    return hsum8(acc);
  }
};

}  // namespace

void matmul_range_kq_avx2(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                          int64_t n0, int64_t n1) {
  kq::range<Avx2Ops>(w, x, ldx, m, y, ldy, n0, n1);
}

}  // namespace specd::kernels
