// The blocking shared by the AVX-512 kernels (f32 FMA and bf16 dot): NB W rows x RB X rows of
// accumulators, their horizontal sums, and the walk over output rows and X-row passes.
//
// Include only from files compiled with AVX-512 flags; everything here has internal linkage
// (matmul_impl.h explains why). A kernel supplies `Kernel::block<NB, RB>(w0, ws, x, ldx, K, acc)`,
// which adds to the zeroed acc[NB][RB] 16-lane partial sums in an order that depends only on K.
#pragma once

#include "kernels/cpu/matmul_impl.h"

#include <immintrin.h>

namespace specd::kernels {
namespace {

constexpr int kNB = 4;  // W rows per block
constexpr int kRB = 6;  // X rows per block, at most

// Horizontal sums of 4 accumulators at once (3x fewer shuffles than 4 separate reductions, which
// matters at K = 64..2048). The tree per accumulator is fixed: quarters (q0+q2)+(q1+q3), then lanes
// (l0+l1)+(l2+l3); each lane's result does not depend on the other inputs, so a single row reduced
// with zeros beside it gives the same bits as inside a block of 4.
inline __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 z = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  z = _mm512_add_ps(z, _mm512_permute_ps(z, _MM_SHUFFLE(2, 3, 0, 1)));
  z = _mm512_add_ps(z, _mm512_permute_ps(z, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512i lane0 = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(lane0, z));
}

// Sums and stores an NB x RB block: Y row r, output column b at y[r * ldy + b * ycs].
template <int NB, int RB>
inline void store_block(__m512 (&acc)[NB][RB], float* y, int64_t ldy, int64_t ycs) {
  const __m512 z = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 4
    for (int b = 0; b < NB; b += 4) {
      const __m128 s = reduce4(acc[b][r], b + 1 < NB ? acc[b + 1][r] : z, b + 2 < NB ? acc[b + 2][r] : z,
                               b + 3 < NB ? acc[b + 3][r] : z);
      if (b + 4 <= NB && ycs == 1) {
        _mm_storeu_ps(y + r * ldy + b, s);
      } else {
        alignas(16) float v[4];
        _mm_store_ps(v, s);
        for (int j = 0; j < 4 && b + j < NB; ++j) y[r * ldy + (b + j) * ycs] = v[j];
      }
    }
  }
}

template <class Kernel, int NB, int RB, class X>
inline void run_block(const uint8_t* w0, size_t ws, const X* x, int64_t ldx, int64_t K, float* y,
                      int64_t ldy, int64_t ycs) {
  __m512 acc[NB][RB];
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) acc[b][r] = _mm512_setzero_ps();
  Kernel::template block<NB, RB>(w0, ws, x, ldx, K, acc);
  store_block<NB, RB>(acc, y, ldy, ycs);
}

template <class Kernel, int NB, class X>
void block_rows(int64_t rb, const uint8_t* w0, size_t ws, const X* x, int64_t ldx, int64_t K,
                float* y, int64_t ldy, int64_t ycs) {
  switch (rb) {
    case 1: return run_block<Kernel, NB, 1>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 2: return run_block<Kernel, NB, 2>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 3: return run_block<Kernel, NB, 3>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 4: return run_block<Kernel, NB, 4>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 5: return run_block<Kernel, NB, 5>(w0, ws, x, ldx, K, y, ldy, ycs);
    default: return run_block<Kernel, NB, 6>(w0, ws, x, ldx, K, y, ldy, ycs);
  }
}

// NB W rows (ws bytes apart; outputs ycs columns apart) against `rows` X rows, in passes of at most
// kRB rows of nearly equal size (8 rows -> 4 + 4 rather than 6 + 2: more FMAs per load).
template <class Kernel, int NB, class X>
void w_block(const uint8_t* w0, size_t ws, const X* x, int64_t ldx, int64_t rows, int64_t K,
             float* y, int64_t ldy, int64_t ycs) {
  const int64_t passes = (rows + kRB - 1) / kRB;
  int64_t r = 0;
  for (int64_t p = 0; p < passes; ++p) {
    const int64_t cnt = rows / passes + (p < rows % passes ? 1 : 0);
    block_rows<Kernel, NB>(cnt, w0, ws, x + r * ldx, ldx, K, y + r * ldy, ldy, ycs);
    r += cnt;
  }
}

// Output rows [n0, n1) for `rows` X rows. Blocks take their 4 W rows from the 4 quarters of the
// range, not 4 neighbours: on the Zen 4 test machine 4 neighbouring rows read side by side (streams
// exactly one row apart) lost ~20% of the streaming-read rate, 4 far-apart streams lost almost
// nothing, and at m = 1 this beat one row at a time (per-row overhead, one FMA chain). The order of
// rows changes no result: each row is summed the same way.
template <class Kernel, class X>
void w_rows(const uint8_t* base, size_t ws, const X* x, int64_t ldx, int64_t rows, int64_t K,
            float* y, int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t q = (n1 - n0) / kNB;
  for (int64_t j = 0; j < q; ++j) {
    w_block<Kernel, kNB>(base + (n0 + j) * ws, q * ws, x, ldx, rows, K, y + n0 + j, ldy, q);
  }
  int64_t n = n0 + q * kNB;
  for (; n < n1; ++n) w_block<Kernel, 1>(base + n * ws, ws, x, ldx, rows, K, y + n, ldy, 1);
}

// X rows per chunk of `row_bytes` each: the chunk should stay in L2 while all of W streams past it.
// Chunks are nearly equal (64 rows with room for 60 -> 32 + 32, not 60 + 4); returns the count.
inline int64_t x_chunks(int64_t m, int64_t row_bytes) {
  constexpr int64_t kXChunkBytes = 512 * 1024;
  int64_t mc = kXChunkBytes / row_bytes;
  if (mc < kRB) mc = kRB;
  return (m + mc - 1) / mc;
}

}  // namespace
}  // namespace specd::kernels
