// The AVX-512 K-quant block pieces that matmul_kquant_avx512.cpp's row loops use: the aligned
// activation block, weight blocks unpacked once into levels (bytes) and sub-block scales (int16
// lanes), their products with one activation row, and the transposing tree that reduces 8 partial
// sums at once.
//
// Included only by matmul_kquant_avx512.cpp, built with its ISA flags; an unnamed namespace, as in
// matmul_kquant_avx2_parts.h, so nothing here is shared with a build for another ISA.
#pragma once

#include "kernels/cpu/matmul_kquant.h"

#include <immintrin.h>

#include "kernels/cpu/matmul_kquant_avx2_parts.h"

namespace specd::kernels {
namespace {

inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }

// One activation block as the K-type kernels read it: Q8_K's values and group sums, 64-byte aligned
// (in BlockQ8_K, 292 bytes with the scale first, every 64-byte load of qs straddled two cache lines;
// the scale goes to a separate array, see prepare_act).
struct alignas(64) XBlock {
  int8_t qs[256];
  int16_t bsums[16];
};
// 32 bytes into both 256-bit halves.
inline __m512i load32x2(const void* p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }

// The 4 x 64 levels of a block times one activation row's 256 values. vpdpbusd sums each 4 products
// into an int32 (at most 4 * 63 * 127 = 32004: it fits an int16), vpackssdw packs two steps' sums to
// int16 (never saturating), and vpdpwssd multiplies each by its sub-block scale into int32: 3 ops on
// the 512-bit multiply port per 128 values instead of 4 (vpmaddubsw + vpdpwssd), and that port is
// what limits m > 1. sp[j] holds the scales of steps 2j, 2j + 1 (scale_index). 16 lanes folded to 8.
inline __m256i block_dot(const __m512i* q, const __m512i* sp, const int8_t* x) {
  const __m512i z = _mm512_setzero_si512();
  const __m512i p01 = _mm512_packs_epi32(_mm512_dpbusd_epi32(z, q[0], load64(x)), _mm512_dpbusd_epi32(z, q[1], load64(x + 64)));
  const __m512i p23 =
      _mm512_packs_epi32(_mm512_dpbusd_epi32(z, q[2], load64(x + 128)), _mm512_dpbusd_epi32(z, q[3], load64(x + 192)));
  const __m512i acc = _mm512_dpwssd_epi32(_mm512_madd_epi16(p01, sp[0]), p23, sp[1]);
  return _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
}

// Which scale each int16 lane of block_dot's packed sums needs. In 128-bit lane k, int16 lanes 0-3
// hold step 2j's int32 lanes 4k..4k+3 (its values 16k..16k+15) and lanes 4-7 step 2j + 1's: index
// sub(step, k) into the block's int16 scales. sub is Q45's kQ45Sub halves or Q6_K's 16-value groups.
struct ScaleIndex {
  alignas(64) int16_t v[2][32];
};
constexpr int kQ45Sub[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
constexpr ScaleIndex scale_index(bool q6) {
  ScaleIndex t{};
  for (int j = 0; j < 2; ++j) {
    for (int l = 0; l < 32; ++l) {
      const int step = 2 * j + (l % 8) / 4, k = l / 8;
      t.v[j][l] = static_cast<int16_t>(q6 ? 4 * step + k : kQ45Sub[step][k / 2]);
    }
  }
  return t;
}
constexpr ScaleIndex kQ45Index = scale_index(false), kQ6Index = scale_index(true);

inline void scale_pairs(__m512i s16, const ScaleIndex& index, __m512i* sp) {
  for (int j = 0; j < 2; ++j) sp[j] = _mm512_permutexvar_epi16(_mm512_load_si512(index.v[j]), s16);
}

// Q4_K and Q5_K. The activation block is reordered (see prepare_act) so that one 64-byte load of qs
// gives, as low nibbles, sub-blocks 2p and 2p + 2 and, as high nibbles, 2p + 1 and 2p + 3: lane halves
// of q[i] are sub-blocks kQ45Sub[i][0] and kQ45Sub[i][1]. Q5_K's fifth bit of element 32 j + l is bit j
// of qh[l].
template <GgmlType T>
struct Q45 {
  static constexpr GgmlType kType = T;
  static constexpr int kTerms = 2;  // the level sum and the minimums' sum
  static constexpr size_t kBytes = T == GgmlType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K);
  __m512i q[4], sc[2];
  __m256i mins;  // m0 m0 m1 m1 ... as int16, against bsums

  explicit Q45(const uint8_t* w) {
    uint8_t s8[8], m8[8];
    unpack_scale_min_k4(w + kq::kKScales, s8, m8);
    const __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s8))));
    const __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m8)));
    mins = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const uint8_t* qs = w + (T == GgmlType::Q4_K ? kq::kQ4KQs : kq::kQ5KQs);
    for (int h = 0; h < 2; ++h) {
      const __m512i raw = load64(qs + 64 * h);
      q[2 * h] = _mm512_and_si512(raw, m4);
      q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
    }
    scale_pairs(s16, kQ45Index, sc);
    if constexpr (T == GgmlType::Q5_K) {
      const __m512i qh = load32x2(w + kq::kQ5KQh);
      const __m512i sixteen = _mm512_set1_epi8(16);
      for (int i = 0; i < 4; ++i) {
        const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << kQ45Sub[i][0])),
                                               _mm256_set1_epi8(static_cast<char>(1 << kQ45Sub[i][1])), 1);
        q[i] = _mm512_mask_add_epi8(q[i], _mm512_test_epi8_mask(qh, bit), q[i], sixteen);
      }
    }
  }
  // The level sum's partial to out[0], the minimums' to out[stride].
  void dot(const XBlock* a, __m256i* out, int64_t stride) const {
    out[0] = block_dot(q, sc, a->qs);
    out[stride] = _mm256_madd_epi16(load32(a->bsums), mins);
  }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w)); }
  static float dmin(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w + 2)); }
};

// Q6_K: one 64-byte load of ql gives elements 0-63 (low nibbles) and 64-127 (high nibbles) of a half;
// element 32 c + l takes bits 2c, 2c + 1 of qh[l]. Group g (16 values) is one 128-bit lane of a step.
struct Q6 {
  static constexpr GgmlType kType = GgmlType::Q6_K;
  static constexpr int kTerms = 1;  // the level sum less 32 x the offset sum
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  __m512i q[4], sc[2];
  __m256i s16;

  explicit Q6(const uint8_t* w) {
    s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kq::kQ6KScales)));
    const __m512i m4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30);
    // Per 256-bit half, the shifts that bring bits 2c, 2c + 1 to bits 4-5: c = 0, 1 left; c = 2, 3 right.
    const __m512i left = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i right = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    for (int h = 0; h < 2; ++h) {
      const __m512i l = load64(w + 64 * h), qh = load32x2(w + kq::kQ6KQh + 32 * h);
      q[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, left), m30));
      q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                     _mm512_and_si512(_mm512_srlv_epi16(qh, right), m30));
    }
    scale_pairs(_mm512_castsi256_si512(s16), kQ6Index, sc);
  }
  void dot(const XBlock* a, __m256i* out, int64_t) const {
    const __m256i off = _mm256_madd_epi16(load32(a->bsums), s16);
    out[0] = _mm256_sub_epi32(block_dot(q, sc, a->qs), _mm256_slli_epi32(off, 5));
  }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w + kq::kQ6KD)); }
  static float dmin(const uint8_t*) { return 0.0f; }
};

}  // namespace
}  // namespace specd::kernels
