// AVX512-BF16 kernel: `vdpbf16ps` dot products, for BF16 and F16 weights on CPUs without AMX.
//
// X is rounded to bf16 once per call (as the AMX path does), F16 weights are rounded to bf16 as
// they are loaded, and each instruction does 32 multiply-adds into 16 f32 lanes: twice the work of
// an f32 FMA per instruction. On the Zen 4 development machine the f32 FMA kernel is compute-bound
// from about 4 X rows, so this moves the verify-cost curve (k rows vs 1) out by about 2x.
// Summation order: lane j sums the pairs k = 2j, 2j+1 (mod 32) in increasing k, then the same
// reduce4 tree as the FMA kernel, so a row's result never depends on m, n0/n1 or the thread count.
#include "kernels/cpu/matmul_impl.h"

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/matmul_avx512_blocks.h"

namespace specd::kernels {
namespace {

constexpr int kStep = 32;  // bf16 elements per zmm

inline int64_t padded(int64_t k) { return (k + kStep - 1) / kStep * kStep; }

// A weight row type: 32 elements at k as bf16 pairs; load_tail reads only the `mask`ed ones.
struct BF16W {
  static __m512bh load(const uint8_t* row, int64_t k) {
    return reinterpret_cast<__m512bh>(_mm512_loadu_si512(row + 2 * k));
  }
  static __m512bh load_tail(const uint8_t* row, int64_t k, __mmask32 mask) {
    return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, row + 2 * k));
  }
};

struct F16W {
  static __m512bh widen(__m512i h) {
    const __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    const __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    return _mm512_cvtne2ps_pbh(hi, lo);
  }
  static __m512bh load(const uint8_t* row, int64_t k) { return widen(_mm512_loadu_si512(row + 2 * k)); }
  static __m512bh load_tail(const uint8_t* row, int64_t k, __mmask32 mask) {
    return widen(_mm512_maskz_loadu_epi16(mask, row + 2 * k));
  }
};

// X rows in bf16, each padded with zeros to a multiple of kStep (so X loads need no mask).
template <class L>
struct Dot {
  template <int NB, int RB>
  static void block(const uint8_t* w0, size_t ws, const uint16_t* x, int64_t ldx, int64_t K,
                    __m512 (&acc)[NB][RB]) {
    const int64_t k_main = K / kStep * kStep;
    for (int64_t k = 0; k < k_main; k += kStep) {
      __m512bh xv[RB];
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) xv[r] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + r * ldx + k));
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const __m512bh wv = L::load(w0 + b * ws, k);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) acc[b][r] = _mm512_dpbf16_ps(acc[b][r], wv, xv[r]);
      }
    }
    if (k_main < K) {
      const auto mask = static_cast<__mmask32>((1ull << (K - k_main)) - 1);
      __m512bh xv[RB];
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) xv[r] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + r * ldx + k_main));
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const __m512bh wv = L::load_tail(w0 + b * ws, k_main, mask);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) acc[b][r] = _mm512_dpbf16_ps(acc[b][r], wv, xv[r]);
      }
    }
  }
};

// rows x K f32 -> rows x padded(K) bf16 (round to nearest even, zero padding).
void pack_x(const float* x, int64_t ldx, int64_t rows, int64_t K, uint16_t* out) {
  const int64_t kp = padded(K);
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = x + r * ldx;
    uint16_t* dst = out + r * kp;
    for (int64_t k = 0; k < kp; k += kStep) {
      const int64_t left = K - k;
      const auto m_lo = static_cast<__mmask16>(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
      const auto m_hi = static_cast<__mmask16>(left >= 32 ? 0xFFFF : left > 16 ? (1u << (left - 16)) - 1 : 0);
      const __m512 lo = _mm512_maskz_loadu_ps(m_lo, src + k);
      const __m512 hi = _mm512_maskz_loadu_ps(m_hi, src + k + 16);
      _mm512_storeu_si512(dst + k, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
    }
  }
}

template <class L>
void range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
           int64_t n0, int64_t n1) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t kp = padded(w.cols);
  const int64_t chunks = x_chunks(m, 2 * kp);
  auto* xb = reinterpret_cast<uint16_t*>(thread_scratch(static_cast<size_t>((m + chunks - 1) / chunks * kp * 2)));
  int64_t i0 = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t rows = m / chunks + (c < m % chunks ? 1 : 0);
    pack_x(x + i0 * ldx, ldx, rows, w.cols, xb);
    w_rows<Dot<L>>(base, w.row_bytes, xb, kp, rows, w.cols, y + i0 * ldy, ldy, n0, n1);
    i0 += rows;
  }
}

}  // namespace

void matmul_range_avx512_bf16(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                              int64_t ldy, int64_t n0, int64_t n1) {
  if (w.type == GgmlType::F16) return range<F16W>(w, x, ldx, m, y, ldy, n0, n1);
  return range<BF16W>(w, x, ldx, m, y, ldy, n0, n1);
}

}  // namespace specd::kernels
