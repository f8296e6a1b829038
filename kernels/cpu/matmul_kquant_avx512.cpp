// AVX-512 VNNI quantized-activation products. The K types unpack each weight block once (levels as
// bytes, sub-block scales as int16 lanes) and reuse it for every activation row of the call, so a
// verify or prefill of m rows does not unpack the weights m times; Q4_0 keeps kq::dot_row.
//
// Numerics: a block's integer sums are exact whatever order they are added in, so they are taken
// here in 512-bit steps and reduced eight at a time by one transposing tree (instead of a horizontal
// sum per block and row, which cost as much as the products). The float side is kq::block_step over
// each row's blocks in order, as on every path: same bits for any m, thread split or ISA path.
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

struct Avx512Q40 : Avx2BlockTerms {
  static int q4_0(const uint8_t* qs, const int8_t* x) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    const __m256i xv = load32(x);
    const __m256i zero = _mm256_setzero_si256();
    // sum q x - 8 sum x, both with vpdpbusd (unsigned x signed, four products per lane).
    return hsum8(_mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, xv), _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), xv)));
  }
};

__m512i load64(const void* p) { return _mm512_loadu_si512(p); }

// One activation block as the K-type kernels read it: Q8_K's values and group sums, 64-byte aligned
// (in BlockQ8_K, 292 bytes with the scale first, every 64-byte load of qs straddled two cache lines;
// the scale goes to a separate array, see prepare_act).
struct alignas(64) XBlock {
  int8_t qs[256];
  int16_t bsums[16];
};
// 32 bytes into both 256-bit halves.
__m512i load32x2(const void* p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }

// The 4 x 64 levels of a block times one activation row's 256 values. vpdpbusd sums each 4 products
// into an int32 (at most 4 * 63 * 127 = 32004: it fits an int16), vpackssdw packs two steps' sums to
// int16 (never saturating), and vpdpwssd multiplies each by its sub-block scale into int32: 3 ops on
// the 512-bit multiply port per 128 values instead of 4 (vpmaddubsw + vpdpwssd), and that port is
// what limits m > 1. sp[j] holds the scales of steps 2j, 2j + 1 (scale_index). 16 lanes folded to 8.
__m256i block_dot(const __m512i* q, const __m512i* sp, const int8_t* x) {
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

// Q4_K and Q5_K. The activation block is reordered (see reorder_q45) so that one 64-byte load of qs
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

// Eight vectors of 8 int32 to their eight sums, in order: one transposing tree.
__m256i sum8x8(const __m256i* a) {
  __m256i t[4];
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
  }
  const __m256i u0 = _mm256_add_epi32(_mm256_unpacklo_epi64(t[0], t[1]), _mm256_unpackhi_epi64(t[0], t[1]));
  const __m256i u1 = _mm256_add_epi32(_mm256_unpacklo_epi64(t[2], t[3]), _mm256_unpackhi_epi64(t[2], t[3]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// Lays out the quantized activations for rows_k: block b of row i to xb[i * blocks + b], where Q4_K
// and Q5_K swap each 128 values' second and third 32 to line up with Q45's levels (exact: the bsums,
// per 16 in order, were taken before and stay right); its scale to ad[b * m + i], for the float steps
// across rows.
void prepare_act(const uint8_t* act, size_t arow, int64_t m, int64_t blocks, bool reorder, float* ad, XBlock* xb) {
  for (int64_t i = 0; i < m; ++i) {
    const auto* a = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(i) * arow);
    for (int64_t b = 0; b < blocks; ++b) {
      XBlock& x = xb[i * blocks + b];
      ad[b * m + i] = a[b].d;
      for (int c = 0; c < 8; ++c) {
        const int from = reorder && (c & 3) == 1 ? c + 1 : reorder && (c & 3) == 2 ? c - 1 : c;
        _mm256_store_si256(reinterpret_cast<__m256i*>(x.qs + 32 * c), load32(a[b].qs + 32 * from));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(x.bsums), load32(a[b].bsums));
    }
  }
}

// Partial sums one chunk holds: 2 KB of vectors, reduced to int32 before the float steps.
constexpr int kParts = 64;
// Weight bytes prefetched ahead. Unlike the 2-byte kernels (CPU-KERNELS.md: prefetch hurt there), these
// spend long enough per byte that the hardware streamers fall behind: at m = 1 this took Q4_K from
// 7.8 to 5.4 ms (kernel-bench, 2 layers, 1 thread); 512, 1024 and 4096 were slower.
constexpr size_t kPrefetch = 2048;

// Weight rows [n0, n1) against activation rows [0, m): per weight row, groups of at most kParts / kTerms
// activation rows; per group, chunks of blocks whose partials fit kParts; per chunk, each weight
// block unpacked once for all the group's rows, the sums reduced, then the float steps, 16 rows a
// vector (lanes past the group compute zeros and are dropped). Partials of block b, term t,
// row r sit at ((b - b0) kTerms + t) g + r, so a vector of rows reads consecutive sums.
template <class B>
void rows_k(const WeightView& w, const XBlock* xb, const float* ad, int64_t m, float* y, int64_t ldy, int64_t n0,
            int64_t n1) {
  constexpr int64_t kGroup = kParts / B::kTerms;
  const int64_t nb = w.cols / kQK;
  __m256i parts[kParts];
  alignas(64) int32_t sums[kParts];
  alignas(64) float s[kGroup];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = base + static_cast<size_t>(n) * w.row_bytes;
    for (int64_t r0 = 0; r0 < m; r0 += kGroup) {
      const int64_t g = m - r0 < kGroup ? m - r0 : kGroup;
      const int64_t chunk = kParts / (g * B::kTerms);
      for (int64_t v = 0; v < g; v += 16) _mm512_store_ps(s + v, _mm512_setzero_ps());
      for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
        const int64_t b1 = b0 + chunk < nb ? b0 + chunk : nb;
        for (int64_t b = b0; b < b1; ++b) {
          const uint8_t* wb = row + static_cast<size_t>(b) * B::kBytes;
          for (size_t l = 0; l < B::kBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetch + l), _MM_HINT_T0);
          const B blk(wb);
          __m256i* p = parts + (b - b0) * B::kTerms * g;
          for (int64_t r = 0; r < g; ++r) {
            blk.dot(xb + (r0 + r) * nb + b, p + r, g);
          }
        }
        const int64_t used = (b1 - b0) * B::kTerms * g;
        for (int64_t i = used; i % 8 != 0; ++i) parts[i] = _mm256_setzero_si256();
        for (int64_t i = 0; i < used; i += 8) _mm256_store_si256(reinterpret_cast<__m256i*>(sums + i), sum8x8(parts + i));
        for (int64_t v = 0; v < g; v += 16) {
          // Lanes past the group read as zeros: garbage there could be subnormal, and each subnormal
          // operand costs a microcode assist (this made m = 1 several times slower).
          const __mmask16 live = g - v >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (g - v)) - 1);
          __m512 acc = _mm512_load_ps(s + v);
          for (int64_t b = b0; b < b1; ++b) {
            const uint8_t* wb = row + static_cast<size_t>(b) * B::kBytes;
            const int32_t* t = sums + (b - b0) * B::kTerms * g + v;
            const __m512 msum = B::kTerms == 2 ? _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(live, t + g)) : _mm512_setzero_ps();
            acc = kq::block_step<B::kType, __m512>(acc, _mm512_maskz_loadu_ps(live, ad + b * m + r0 + v),
                                                   _mm512_set1_ps(B::d(wb)), _mm512_set1_ps(B::dmin(wb)),
                                                   _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(live, t)), msum);
          }
          _mm512_store_ps(s + v, acc);
        }
      }
      for (int64_t r = 0; r < g; ++r) y[(r0 + r) * ldy + n] = s[r];
    }
  }
}

// m = 1 (decode): rows_k's work, but 16 weight rows a vector in the float steps. With one activation
// row, a weight row's steps are one serial chain (two dependent adds per block), and rows_k left
// it exposed; here lane j runs weight row t0 + j's chain, doing the scalar sum's operations in the
// same order (same bits). Lanes past n1 repeat the last row and are dropped.
template <class B>
void rows_1(const WeightView& w, const XBlock* xb, const float* ad, float* y, int64_t n0, int64_t n1) {
  constexpr int64_t kChunk = 32;  // blocks a pass: all of a 8192-wide row
  const int64_t nb = w.cols / kQK;
  __m256i parts[kChunk * B::kTerms];
  alignas(64) int32_t sums[kChunk * B::kTerms], isum[kChunk][16], msum[kChunk][16];
  alignas(64) float wd[kChunk][16], wdmin[kChunk][16];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t t0 = n0; t0 < n1; t0 += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
      const int64_t b1 = b0 + kChunk < nb ? b0 + kChunk : nb, used = (b1 - b0) * B::kTerms;
      for (int64_t j = 0; j < 16; ++j) {
        const uint8_t* row = base + static_cast<size_t>(t0 + j < n1 ? t0 + j : n1 - 1) * w.row_bytes;
        for (int64_t b = b0; b < b1; ++b) {
          const uint8_t* wb = row + static_cast<size_t>(b) * B::kBytes;
          for (size_t l = 0; l < B::kBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetch + l), _MM_HINT_T0);
          B(wb).dot(xb + b, parts + (b - b0) * B::kTerms, 1);
          wd[b - b0][j] = B::d(wb), wdmin[b - b0][j] = B::dmin(wb);
        }
        for (int64_t i = used; i % 8 != 0; ++i) parts[i] = _mm256_setzero_si256();
        for (int64_t i = 0; i < used; i += 8) _mm256_store_si256(reinterpret_cast<__m256i*>(sums + i), sum8x8(parts + i));
        for (int64_t b = 0; b < b1 - b0; ++b) {
          isum[b][j] = sums[b * B::kTerms];
          msum[b][j] = B::kTerms == 2 ? sums[b * B::kTerms + 1] : 0;
        }
      }
      for (int64_t b = b0; b < b1; ++b) {
        acc = kq::block_step<B::kType, __m512>(acc, _mm512_set1_ps(ad[b]), _mm512_load_ps(wd[b - b0]), _mm512_load_ps(wdmin[b - b0]),
                                               _mm512_cvtepi32_ps(_mm512_load_si512(isum[b - b0])),
                                               _mm512_cvtepi32_ps(_mm512_load_si512(msum[b - b0])));
      }
    }
    alignas(64) float out[16];
    _mm512_store_ps(out, acc);
    for (int64_t j = 0; j < 16 && t0 + j < n1; ++j) y[t0 + j] = out[j];
  }
}

// Q4_K, Q5_K or Q6_K (B): rows_1 for one activation row, rows_k otherwise.
template <class B>
void rows_any(const WeightView& w, const XBlock* xb, const float* ad, int64_t m, float* y, int64_t ldy, int64_t n0,
              int64_t n1) {
  if (m == 1) return rows_1<B>(w, xb, ad, y, n0, n1);
  rows_k<B>(w, xb, ad, m, y, ldy, n0, n1);
}

}  // namespace

void matmul_range_kq_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                            int64_t n0, int64_t n1) {
  const size_t arow = kq::act_row_bytes(w);
  const int64_t nb = w.cols / kQK;
  // After the activations, 64-byte aligned: their blocks as XBlocks, then their scales (ad).
  const size_t act_bytes = (arow * static_cast<size_t>(m) + 63) / 64 * 64, xb_bytes = sizeof(XBlock) * static_cast<size_t>(nb * m);
  uint8_t* act = kq::quantize_rows(w, x, ldx, m, act_bytes - arow * static_cast<size_t>(m) + xb_bytes + sizeof(float) * static_cast<size_t>(nb * m));
  auto* xb = reinterpret_cast<XBlock*>(act + act_bytes);
  auto* ad = reinterpret_cast<float*>(act + act_bytes + xb_bytes);
  switch (w.type) {
    case GgmlType::Q4_0:
      return kq::rows<Avx512Q40, GgmlType::Q4_0>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q4_K:
      prepare_act(act, arow, m, nb, true, ad, xb);
      return rows_any<Q45<GgmlType::Q4_K>>(w, xb, ad, m, y, ldy, n0, n1);
    case GgmlType::Q5_K:
      prepare_act(act, arow, m, nb, true, ad, xb);
      return rows_any<Q45<GgmlType::Q5_K>>(w, xb, ad, m, y, ldy, n0, n1);
    case GgmlType::Q6_K:
      prepare_act(act, arow, m, nb, false, ad, xb);
      return rows_any<Q6>(w, xb, ad, m, y, ldy, n0, n1);
    default:
      return;  // not a quantized-activation type: matmul.cpp never routes one here
  }
}

}  // namespace specd::kernels
