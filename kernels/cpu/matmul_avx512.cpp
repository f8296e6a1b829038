// AVX-512 kernels: blocks of NB W rows x RB X rows as dot products, weights widened to f32 in zmm.
//
// CPU-KERNELS.md: NB=4 x RB=6 (24 zmm accumulators) was the best FMA block shape; F16 is widened
// with vcvtph2ps, BF16 with a 16-bit shift (faster than vdpbf16ps and X stays f32), Q8_0 with
// vpmovsxbd + a multiply by the block scale (exact in f32). Each W block is read from memory once per
// X chunk and reused from cache for every RB-row pass, so m = 2..6 costs about what m = 1 does.
#include "kernels/cpu/matmul_impl.h"

// GCC 12.2's _mm512_undefined_*() initialize a variable with itself on purpose, which trips
// -Wuninitialized wherever AVX-512 intrinsics are inlined (GCC PR105593, fixed in 12.3). The
// warning is issued after inlining, so the pragma has to cover this whole file.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace specd::kernels {
namespace {

constexpr int kNB = 4;  // W rows per block
constexpr int kRB = 6;  // X rows per block, at most
// X rows per chunk: the chunk (rows x K floats) should stay in L2 while all of W streams past it.
constexpr int64_t kXChunkBytes = 512 * 1024;

// A weight row type: kStep elements per step, load(row, k, h) gives elements k+16h .. k+16h+15.
struct F32W {
  static constexpr int kStep = 16;
  static __m512 load(const uint8_t* row, int64_t k, int) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k);
  }
};

struct F16W {
  static constexpr int kStep = 16;
  static __m512 load(const uint8_t* row, int64_t k, int) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  }
};

struct BF16W {
  static constexpr int kStep = 16;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint8_t* row, int64_t k, int) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return widen(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  }
};

// Q8_0: 34-byte blocks (f16 scale, 32 int8). d * q is exact in f32 (8 + 11 significant bits).
struct Q8W {
  static constexpr int kStep = 32;
  static __m512 load(const uint8_t* row, int64_t k, int h) {
    const uint8_t* blk = row + (k >> 5) * 34;
    uint16_t dh;
    __builtin_memcpy(&dh, blk, 2);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + 16 * h));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(_cvtsh_ss(dh)));
  }
  static __m512 load_tail(const uint8_t*, int64_t, __mmask16) { return _mm512_setzero_ps(); }  // K % 32 == 0
};

// Horizontal sums of 4 accumulators at once (3x fewer shuffles than 4 separate reductions, which
// matters at K = 64..2048). The tree per accumulator is fixed: quarters (q0+q2)+(q1+q3), then lanes
// (l0+l1)+(l2+l3); each lane's result does not depend on the other inputs, so a single row reduced
// with zeros beside it gives the same bits as inside a block of 4.
__m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
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

// One NB x RB block of Y over the whole K, in a fixed order: lane j sums k = j (mod 16) in
// increasing k, then reduce4's tree. Neither depends on NB, RB or m.
template <class L, int NB, int RB>
void block(const uint8_t* w0, size_t ws, const float* x, int64_t ldx, int64_t K, float* y, int64_t ldy,
           int64_t ycs) {
  __m512 acc[NB][RB];
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) acc[b][r] = _mm512_setzero_ps();
  const int64_t k_main = K / L::kStep * L::kStep;
  for (int64_t k = 0; k < k_main; k += L::kStep) {
#pragma GCC unroll 2
    for (int h = 0; h < L::kStep / 16; ++h) {
      __m512 xv[RB];
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) xv[r] = _mm512_loadu_ps(x + r * ldx + k + 16 * h);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const __m512 wv = L::load(w0 + b * ws, k, h);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) acc[b][r] = _mm512_fmadd_ps(wv, xv[r], acc[b][r]);
      }
    }
  }
  if (k_main < K) {
    const auto mask = static_cast<__mmask16>((1u << (K - k_main)) - 1);
    __m512 xv[RB];
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) xv[r] = _mm512_maskz_loadu_ps(mask, x + r * ldx + k_main);
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const __m512 wv = L::load_tail(w0 + b * ws, k_main, mask);
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) acc[b][r] = _mm512_fmadd_ps(wv, xv[r], acc[b][r]);
    }
  }
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

template <class L, int NB>
void block_rows(int64_t rb, const uint8_t* w0, size_t ws, const float* x, int64_t ldx, int64_t K,
                float* y, int64_t ldy, int64_t ycs) {
  switch (rb) {
    case 1: return block<L, NB, 1>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 2: return block<L, NB, 2>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 3: return block<L, NB, 3>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 4: return block<L, NB, 4>(w0, ws, x, ldx, K, y, ldy, ycs);
    case 5: return block<L, NB, 5>(w0, ws, x, ldx, K, y, ldy, ycs);
    default: return block<L, NB, 6>(w0, ws, x, ldx, K, y, ldy, ycs);
  }
}

// NB W rows (ws bytes apart; outputs ycs columns apart) against `rows` X rows, in passes of at most
// kRB rows of nearly equal size (8 rows -> 4 + 4 rather than 6 + 2: more FMAs per load).
template <class L, int NB>
void w_block(const uint8_t* w0, size_t ws, const float* x, int64_t ldx, int64_t rows, int64_t K,
             float* y, int64_t ldy, int64_t ycs) {
  const int64_t passes = (rows + kRB - 1) / kRB;
  int64_t r = 0;
  for (int64_t p = 0; p < passes; ++p) {
    const int64_t cnt = rows / passes + (p < rows % passes ? 1 : 0);
    block_rows<L, NB>(cnt, w0, ws, x + r * ldx, ldx, K, y + r * ldy, ldy, ycs);
    r += cnt;
  }
}

// Output rows [n0, n1) for `rows` X rows. Blocks take their 4 W rows from the 4 quarters of the
// range, not 4 neighbours: on the Zen 4 test machine 4 neighbouring rows read side by side (streams
// exactly one row apart) lost ~20% of the streaming-read rate, 4 far-apart streams lost almost
// nothing, and at m = 1 this beat one row at a time (per-row overhead, one FMA chain). The order of
// rows changes no result: each row is summed the same way.
template <class L>
void w_rows(const uint8_t* base, size_t ws, const float* x, int64_t ldx, int64_t rows, int64_t K,
            float* y, int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t q = (n1 - n0) / kNB;
  for (int64_t j = 0; j < q; ++j) {
    w_block<L, kNB>(base + (n0 + j) * ws, q * ws, x, ldx, rows, K, y + n0 + j, ldy, q);
  }
  int64_t n = n0 + q * kNB;
  for (; n < n1; ++n) w_block<L, 1>(base + n * ws, ws, x, ldx, rows, K, y + n, ldy, 1);
}

template <class L>
void range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
           int64_t n0, int64_t n1) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  // Chunks of nearly equal size (64 rows with room for 60 -> 32 + 32, not 60 + 4).
  int64_t mc = kXChunkBytes / (4 * w.cols);
  if (mc < kRB) mc = kRB;
  const int64_t chunks = (m + mc - 1) / mc;
  int64_t i0 = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t rows = m / chunks + (c < m % chunks ? 1 : 0);
    w_rows<L>(base, w.row_bytes, x + i0 * ldx, ldx, rows, w.cols, y + i0 * ldy, ldy, n0, n1);
    i0 += rows;
  }
}

}  // namespace

void matmul_range_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                         int64_t ldy, int64_t n0, int64_t n1) {
  switch (w.type) {
    case GgmlType::F32: return range<F32W>(w, x, ldx, m, y, ldy, n0, n1);
    case GgmlType::F16: return range<F16W>(w, x, ldx, m, y, ldy, n0, n1);
    case GgmlType::BF16: return range<BF16W>(w, x, ldx, m, y, ldy, n0, n1);
    case GgmlType::Q8_0: return range<Q8W>(w, x, ldx, m, y, ldy, n0, n1);
  }
}

}  // namespace specd::kernels
