// AVX2 kernels: the AVX-512 block structure with ymm (F16 via F16C, BF16 via a 16-bit shift).
//
// 16 ymm registers: NB=4 W rows x RB=3 X rows = 12 accumulators + 3 X vectors + 1 W vector.
// The K tail (K % 8) is summed in scalar code after the vector reduction, in a fixed order.
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/matmul_kquant.h"

#include <immintrin.h>

namespace specd::kernels {
namespace {

constexpr int kNB = 4;
constexpr int kRB = 3;
constexpr int64_t kXChunkBytes = 512 * 1024;
// Weight bytes prefetched ahead of each W row, as in matmul_avx512.cpp (on the AMX Xeon, with this
// path forced: m = 1, 2 threads, Q8_0 62 -> 46 ms, BF16 91 -> 73 ms).
constexpr size_t kPrefetch = 2048;

struct F32W {
  static constexpr int kStep = 8;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + 4 * k; }
  static __m256 load(const uint8_t* row, int64_t k, int) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
};

struct F16W {
  static constexpr int kStep = 8;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + 2 * k; }
  static __m256 load(const uint8_t* row, int64_t k, int) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  }
};

struct BF16W {
  static constexpr int kStep = 8;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + 2 * k; }
  static __m256 load(const uint8_t* row, int64_t k, int) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};

struct Q8W {
  static constexpr int kStep = 32;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + (k >> 5) * 34; }
  static __m256 load(const uint8_t* row, int64_t k, int h) {
    const uint8_t* blk = row + (k >> 5) * 34;
    uint16_t dh;
    __builtin_memcpy(&dh, blk, 2);
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * h));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(_cvtsh_ss(dh)));
  }
};

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Scalar K tail of one (W row, X row) pair; Q8_0 never has one (K % 32 == 0).
float tail_dot(GgmlType type, const uint8_t* row, const float* x, int64_t k0, int64_t K) {
  float t = 0.0f;
  for (int64_t k = k0; k < K; ++k) t += x[k] * weight_elem(type, row, k);
  return t;
}

// NB W rows ws bytes apart; their outputs land ycs columns apart in Y.
template <class L, int NB, int RB>
void block(GgmlType type, const uint8_t* w0, size_t ws, const float* x, int64_t ldx, int64_t K,
           float* y, int64_t ldy, int64_t ycs) {
  __m256 acc[NB][RB];
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) acc[b][r] = _mm256_setzero_ps();
  const int64_t k_main = K / L::kStep * L::kStep;
  for (int64_t k = 0; k < k_main; k += L::kStep) {
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) _mm_prefetch(reinterpret_cast<const char*>(L::at(w0 + b * ws, k) + kPrefetch), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int h = 0; h < L::kStep / 8; ++h) {
      __m256 xv[RB];
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) xv[r] = _mm256_loadu_ps(x + r * ldx + k + 8 * h);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const __m256 wv = L::load(w0 + b * ws, k, h);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) acc[b][r] = _mm256_fmadd_ps(wv, xv[r], acc[b][r]);
      }
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      const float t = k_main < K ? tail_dot(type, w0 + b * ws, x + r * ldx, k_main, K) : 0.0f;
      y[r * ldy + b * ycs] = hsum(acc[b][r]) + t;
    }
}

template <class L, int NB>
void w_block(GgmlType type, const uint8_t* w0, size_t ws, const float* x, int64_t ldx, int64_t rows,
             int64_t K, float* y, int64_t ldy, int64_t ycs) {
  const int64_t passes = (rows + kRB - 1) / kRB;
  int64_t r = 0;
  for (int64_t p = 0; p < passes; ++p) {
    const int64_t cnt = rows / passes + (p < rows % passes ? 1 : 0);
    const float* xp = x + r * ldx;
    float* yp = y + r * ldy;
    switch (cnt) {
      case 1: block<L, NB, 1>(type, w0, ws, xp, ldx, K, yp, ldy, ycs); break;
      case 2: block<L, NB, 2>(type, w0, ws, xp, ldx, K, yp, ldy, ycs); break;
      default: block<L, NB, 3>(type, w0, ws, xp, ldx, K, yp, ldy, ycs); break;
    }
    r += cnt;
  }
}

// Blocks take their 4 W rows from the 4 quarters of [n0, n1): 4 far-apart streams read faster than
// 4 neighbouring rows (see matmul_avx512.cpp). One ymm FMA chain per row is too slow for decode, so
// unlike AVX-512 one X row uses the same 4-row blocks.
template <class L>
void range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
           int64_t n0, int64_t n1) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t ws = w.row_bytes;
  const int64_t K = w.cols, q = (n1 - n0) / kNB;
  int64_t mc = kXChunkBytes / (4 * K) / kRB * kRB;
  if (mc < kRB) mc = kRB;
  for (int64_t i0 = 0; i0 < m; i0 += mc) {
    const int64_t rows = m - i0 < mc ? m - i0 : mc;
    const float* xc = x + i0 * ldx;
    float* yc = y + i0 * ldy;
    for (int64_t j = 0; j < q; ++j) {
      w_block<L, kNB>(w.type, base + (n0 + j) * ws, q * ws, xc, ldx, rows, K, yc + n0 + j, ldy, q);
    }
    for (int64_t n = n0 + q * kNB; n < n1; ++n) w_block<L, 1>(w.type, base + n * ws, ws, xc, ldx, rows, K, yc + n, ldy, 1);
  }
}

}  // namespace

void matmul_range_avx2(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                       int64_t ldy, int64_t n0, int64_t n1) {
  switch (w.type) {
    case GgmlType::F32: return range<F32W>(w, x, ldx, m, y, ldy, n0, n1);
    case GgmlType::F16: return range<F16W>(w, x, ldx, m, y, ldy, n0, n1);
    case GgmlType::BF16: return range<BF16W>(w, x, ldx, m, y, ldy, n0, n1);
    case GgmlType::Q8_0: return range<Q8W>(w, x, ldx, m, y, ldy, n0, n1);
    // Q4_0 and the K types: matmul.cpp routes them to matmul_kquant; a direct caller gets the same
    // bits from the AVX2 one (every kquant path gives identical results).
    default: return matmul_range_kq_avx2(w, x, ldx, m, y, ldy, n0, n1);
  }
}

}  // namespace specd::kernels
