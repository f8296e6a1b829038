// AVX2 integer block sums for the quantized-activation products: vpmaddubsw (unsigned weight level x
// signed activation, pairs to int16: at most 2 * 63 * 127, no saturation) then vpmaddwd by the
// sub-block scale.
//
// Eight weight rows at a time: each (row, block) leaves its sums unreduced (8 int32 lanes), one
// transposing tree (sum8x8) reduces eight rows' at once, and the float steps run eight rows a vector,
// each lane doing kq::block_step's operations over its row's blocks in order: the same bits as the
// scalar dot_row, for any m, thread split or ISA path. A horizontal sum per block and row, and one
// serial float chain per row, made decode on this path 3 to 5 times slower than reading the weights
// (kernel-bench, 1B-shape matrices, m = 1: Q4_0 129 ms, Q4_K 84 ms against 23-27 ms of plain reads).
// With more activation rows, the eight weight rows are read from DRAM once and from cache for the rest.
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

// One block's sums against one activation block, unreduced: the level sum (Q6_K's with its -32
// offset) in *isum and the minimums' term (Q4_K, Q5_K) in *msum; the block's fp16 scales as floats.
template <GgmlType T>
struct Block;

template <>
struct Block<GgmlType::Q4_0> {
  static constexpr size_t kW = sizeof(BlockQ4_0), kA = sizeof(BlockQ8_0);
  static constexpr int64_t kQ = 32;
  static void sums(const uint8_t* w, const uint8_t* a, __m256i* isum, __m256i*) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kq::kQ4_0Qs));
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    const __m256i xv = load32(a + 2);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv));
    *isum = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
  static float ad(const uint8_t* a) { return _cvtsh_ss(kq::u16_at(a)); }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w)); }
  static float dmin(const uint8_t*) { return 0.0f; }
};

// Q4_K and Q5_K (their 4-bit and 5-bit levels; the rest is shared).
template <GgmlType T>
struct BlockQ45 {
  static constexpr size_t kW = T == GgmlType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K), kA = sizeof(BlockQ8_K);
  static constexpr int64_t kQ = kQK;
  static void sums(const uint8_t* w, const uint8_t* act, __m256i* isum, __m256i* msum) {
    const auto* a = reinterpret_cast<const BlockQ8_K*>(act);
    uint8_t sc[8], mn[8];
    unpack_scale_min_k4(w + kq::kKScales, sc, mn);
    *msum = Avx2BlockTerms::mins(a->bsums, mn);
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const uint8_t* qs = w + (T == GgmlType::Q4_K ? kq::kQ4KQs : kq::kQ5KQs);
    __m256i h = _mm256_setzero_si256(), acc = _mm256_setzero_si256();
    if constexpr (T == GgmlType::Q5_K) h = load32(w + kq::kQ5KQh);
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      if constexpr (T == GgmlType::Q5_K) {
        lo = _mm256_or_si256(lo, high_bits(h, 2 * p, 1));
        hi = _mm256_or_si256(hi, high_bits(h, 2 * p + 1, 1));
      }
      acc = _mm256_add_epi32(acc, scaled_dot(lo, a->qs + 64 * p, sc[2 * p], sc[2 * p]));
      acc = _mm256_add_epi32(acc, scaled_dot(hi, a->qs + 64 * p + 32, sc[2 * p + 1], sc[2 * p + 1]));
    }
    *isum = acc;
  }
  static float ad(const uint8_t* a) { return reinterpret_cast<const BlockQ8_K*>(a)->d; }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w)); }
  static float dmin(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w + 2)); }
};
template <>
struct Block<GgmlType::Q4_K> : BlockQ45<GgmlType::Q4_K> {};
template <>
struct Block<GgmlType::Q5_K> : BlockQ45<GgmlType::Q5_K> {};

template <>
struct Block<GgmlType::Q6_K> {
  static constexpr size_t kW = sizeof(BlockQ6_K), kA = sizeof(BlockQ8_K);
  static constexpr int64_t kQ = kQK;
  static void sums(const uint8_t* w, const uint8_t* act, __m256i* isum, __m256i*) {
    const auto* a = reinterpret_cast<const BlockQ8_K*>(act);
    const auto* sc = reinterpret_cast<const int8_t*>(w + kq::kQ6KScales);
    const uint8_t *ql = w, *qh = w + kq::kQ6KQh;
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
        acc = _mm256_add_epi32(acc, scaled_dot(q[c], a->qs + 128 * half + 32 * c, sc[g], sc[g + 1]));
      }
    }
    // the levels are unsigned: their -32 offset is 32 times the scaled group sums (exact in int32)
    *isum = _mm256_sub_epi32(acc, _mm256_slli_epi32(Avx2BlockTerms::q6_off(a->bsums, sc), 5));
  }
  static float ad(const uint8_t* a) { return reinterpret_cast<const BlockQ8_K*>(a)->d; }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w + kq::kQ6KD)); }
  static float dmin(const uint8_t*) { return 0.0f; }
};

constexpr int64_t kChunk = 32;       // blocks a pass: all of an 8192-wide K row, 1024 wide for Q4_0
constexpr size_t kPrefetch = 2048;   // weight bytes prefetched ahead, as in the other kernels

// Weight rows [n0, n1) eight at a time (lanes past n1 repeat the last row and are dropped), against
// each activation row in turn.
template <GgmlType T>
void rows8(const WeightView& w, const uint8_t* act, size_t arow, int64_t m, float* y, int64_t ldy, int64_t n0,
           int64_t n1) {
  using B = Block<T>;
  constexpr bool kMins = T == GgmlType::Q4_K || T == GgmlType::Q5_K;
  const int64_t nb = w.cols / B::kQ;
  __m256i ip[kChunk][8], mp[kChunk][8];
  alignas(32) float wd[kChunk][8], wdmin[kChunk][8];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t t0 = n0; t0 < n1; t0 += 8) {
    const uint8_t* row[8];
    for (int64_t j = 0; j < 8; ++j) row[j] = base + static_cast<size_t>(t0 + j < n1 ? t0 + j : n1 - 1) * w.row_bytes;
    for (int64_t i = 0; i < m; ++i) {
      const uint8_t* a = act + static_cast<size_t>(i) * arow;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
        const int64_t b1 = b0 + kChunk < nb ? b0 + kChunk : nb;
        for (int64_t j = 0; j < 8; ++j) {
          for (int64_t b = b0; b < b1; ++b) {
            const uint8_t* wb = row[j] + static_cast<size_t>(b) * B::kW;
            if (i == 0) {
              for (size_t l = 0; l < B::kW; l += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetch + l), _MM_HINT_T0);
            }
            B::sums(wb, a + static_cast<size_t>(b) * B::kA, &ip[b - b0][j], &mp[b - b0][j]);
            wd[b - b0][j] = B::d(wb);
            wdmin[b - b0][j] = B::dmin(wb);
          }
        }
        for (int64_t b = b0; b < b1; ++b) {
          const __m256 isum = _mm256_cvtepi32_ps(sum8x8(ip[b - b0]));
          const __m256 msum = kMins ? _mm256_cvtepi32_ps(sum8x8(mp[b - b0])) : _mm256_setzero_ps();
          acc = kq::block_step<T, __m256>(acc, _mm256_set1_ps(B::ad(a + static_cast<size_t>(b) * B::kA)),
                                          _mm256_load_ps(wd[b - b0]), _mm256_load_ps(wdmin[b - b0]), isum, msum);
        }
      }
      alignas(32) float out[8];
      _mm256_store_ps(out, acc);
      for (int64_t j = 0; j < 8 && t0 + j < n1; ++j) y[i * ldy + t0 + j] = out[j];
    }
  }
}

}  // namespace

void matmul_range_kq_avx2(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                          int64_t n0, int64_t n1) {
  const size_t arow = kq::act_row_bytes(w);
  const uint8_t* act = kq::quantize_rows(w, x, ldx, m);
  switch (w.type) {
    case GgmlType::Q4_0:
      return rows8<GgmlType::Q4_0>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q4_K:
      return rows8<GgmlType::Q4_K>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q5_K:
      return rows8<GgmlType::Q5_K>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q6_K:
      return rows8<GgmlType::Q6_K>(w, act, arow, m, y, ldy, n0, n1);
    default:
      return;  // not a quantized-activation type: matmul.cpp never routes one here
  }
}

}  // namespace specd::kernels
