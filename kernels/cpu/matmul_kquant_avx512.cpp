// AVX-512 VNNI quantized-activation products. The K types unpack each weight block once (levels as
// bytes, sub-block scales as int16 lanes) and reuse it for every activation row of the call, so a
// verify or prefill of m rows does not unpack the weights m times; Q4_0 does the same in matmul_q4_0_avx512.cpp.
//
// Numerics: a block's integer sums are exact whatever order they are added in, so they are taken
// here in 512-bit steps and reduced eight at a time by one transposing tree (instead of a horizontal
// sum per block and row, which cost as much as the products). The float side is kq::block_step over
// each row's blocks in order, as on every path: same bits for any m, thread split or ISA path. It runs
// 16 lanes wide, the lanes being activation rows (rows_k) or, at m = 1, weight rows (rows_1).
// The block pieces are in matmul_kquant_avx512_blocks.h.
#include "kernels/cpu/matmul_kquant.h"

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/matmul_kquant_avx2_parts.h"
#include "kernels/cpu/matmul_kquant_avx512_blocks.h"

namespace specd::kernels {
namespace {

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
  if (w.type == GgmlType::Q4_0) return matmul_range_q4_0_avx512(w, x, ldx, m, y, ldy, n0, n1);
  const size_t arow = kq::act_row_bytes(w);
  const int64_t nb = w.cols / kQK;
  // After the activations, 64-byte aligned: their blocks as XBlocks, then their scales (ad).
  const size_t act_bytes = (arow * static_cast<size_t>(m) + 63) / 64 * 64, xb_bytes = sizeof(XBlock) * static_cast<size_t>(nb * m);
  uint8_t* act = kq::quantize_rows(w, x, ldx, m, act_bytes - arow * static_cast<size_t>(m) + xb_bytes + sizeof(float) * static_cast<size_t>(nb * m));
  auto* xb = reinterpret_cast<XBlock*>(act + act_bytes);
  auto* ad = reinterpret_cast<float*>(act + act_bytes + xb_bytes);
  switch (w.type) {
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
