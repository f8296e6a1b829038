// AVX-512 kernels: blocks of NB W rows x RB X rows as dot products, weights widened to f32 in zmm.
//
// CPU-KERNELS.md: NB=4 x RB=6 (24 zmm accumulators) was the best FMA block shape; F16 is widened
// with vcvtph2ps, BF16 with a 16-bit shift (faster than vdpbf16ps and X stays f32), Q8_0 with
// vpmovsxbd + a multiply by the block scale (exact in f32). Each W block is read from memory once per
// X chunk and reused from cache for every RB-row pass, so m = 2..6 costs about what m = 1 does.
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/matmul_kquant.h"

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/matmul_avx512_blocks.h"

namespace specd::kernels {
namespace {

// Weight bytes prefetched ahead of each of a block's W rows. The four rows come from the four
// quarters of the range, four streams per thread, and on the AMX Xeon the hardware streamers did not
// keep up with them: at m = 1 (2 threads, kernel-bench) Q8_0 went from 57 to 43-45 ms, BF16 and F16
// (on the AVX-512 path) from 82-86 to 74-76 ms, faster than kernel-bench's plain read of the same
// bytes; 1024 and 2048 measured alike, and 2048 is what the quantized kernels use.
constexpr size_t kPrefetch = 2048;

// A weight row type: kStep elements per step, load(row, k, h) gives elements k+16h .. k+16h+15 and
// at(row, k) the address of element k (what the prefetch reads ahead of).
struct F32W {
  static constexpr int kStep = 16;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + 4 * k; }
  static __m512 load(const uint8_t* row, int64_t k, int) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k);
  }
};

struct F16W {
  static constexpr int kStep = 16;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + 2 * k; }
  static __m512 load(const uint8_t* row, int64_t k, int) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  }
  static __m512 load_tail(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  }
};

struct BF16W {
  static constexpr int kStep = 16;
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + 2 * k; }
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
  static const uint8_t* at(const uint8_t* row, int64_t k) { return row + (k >> 5) * 34; }
};

// One NB x RB block over the whole K, in a fixed order: lane j sums k = j (mod 16) in increasing k,
// then reduce4's tree. Neither depends on NB, RB or m.
template <class L>
struct Fma {
  template <int NB, int RB>
  static void block(const uint8_t* w0, size_t ws, const float* x, int64_t ldx, int64_t K,
                    __m512 (&acc)[NB][RB]) {
    const int64_t k_main = K / L::kStep * L::kStep;
    for (int64_t k = 0; k < k_main; k += L::kStep) {
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) _mm_prefetch(reinterpret_cast<const char*>(L::at(w0 + b * ws, k) + kPrefetch), _MM_HINT_T0);
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
  }
};

template <class L>
void range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
           int64_t n0, int64_t n1) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t chunks = x_chunks(m, 4 * w.cols);
  int64_t i0 = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t rows = m / chunks + (c < m % chunks ? 1 : 0);
    w_rows<Fma<L>>(base, w.row_bytes, x + i0 * ldx, ldx, rows, w.cols, y + i0 * ldy, ldy, n0, n1);
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
    // Q4_0 and the K types: matmul.cpp routes them to matmul_kquant; a direct caller gets the same
    // bits from the AVX2 one (every kquant path gives identical results).
    default: return matmul_range_kq_avx2(w, x, ldx, m, y, ldy, n0, n1);
  }
}

}  // namespace specd::kernels
