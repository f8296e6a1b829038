// Q4_0 weights against Q8_0 activations on AVX-512 VNNI, unpacking each run of eight weight blocks
// (256 values) once for every activation row of the call, as matmul_kquant_avx512.cpp does for the K
// types. Before it, Q4_0 went through kq::dot_row: every (weight row, activation row) pair unpacked
// the nibbles again and summed each 32-value block horizontally, so a verify of k rows cost about k
// decodes.
//
// Numerics: a block's integer sum is exact in any order; the float side is kq::block_step over each
// row's blocks in order, as on every path, so a row gives the same bits for any m, thread split or
// ISA (tests/test_kquant.cpp). Lanes are activation rows (rows_k) or, at m = 1, weight rows (rows_1).
#include "kernels/cpu/matmul_kquant.h"

#include "kernels/cpu/avx512_intrinsics.h"

#include <cstring>

namespace specd::kernels {
namespace {

constexpr int64_t kRun = 8;  // Q4_0 blocks per run: 256 values, four 64-byte vectors
constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
// As in matmul_kquant_avx512.cpp: these kernels spend long enough per weight byte that the hardware
// streamers fall behind, so the weights are prefetched this far ahead.
constexpr size_t kPrefetch = 2048;

// One activation row prepared for runs: values of blocks 2p and 2p + 1 interleaved per 16 as
// [x(2p)[0:16], x(2p+1)[0:16], x(2p)[16:32], x(2p+1)[16:32]] to match Run's levels, and each
// block's value sum (for the -8 offset). Blocks past the row's end are zeros.
struct alignas(64) XRun {
  int8_t qs[256];
  int32_t sums[kRun];
};

// Up to eight weight blocks' 4-bit levels: q[p] holds blocks 2p, 2p + 1 as
// [low nibbles(2p), low nibbles(2p+1), high nibbles(2p), high nibbles(2p+1)] (16 bytes each).
// Blocks past `count` are zero levels and are never read from memory.
struct Run {
  __m512i q[4];
  Run(const uint8_t* w, int64_t count) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    for (int p = 0; p < 4; ++p) {
      const __m128i a = 2 * p < count ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * p * kBlockBytes + 2)) : _mm_setzero_si128();
      const __m128i b = 2 * p + 1 < count ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + (2 * p + 1) * kBlockBytes + 2))
                                          : _mm_setzero_si128();
      const __m256i ab = _mm256_set_m128i(b, a);
      const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1);
      q[p] = _mm512_and_si512(both, m4);
    }
  }
  // The eight blocks' sums of (level - 8) x, in block order.
  __m256i dot(const XRun& x) const {
    const __m512i z = _mm512_setzero_si512();
    __m256i v[4];
    for (int p = 0; p < 4; ++p) {
      const __m512i d = _mm512_dpbusd_epi32(z, q[p], _mm512_load_si512(x.qs + 64 * p));
      // Lanes 0-3 and 8-11 are block 2p's, 4-7 and 12-15 block 2p + 1's.
      v[p] = _mm256_add_epi32(_mm512_castsi512_si256(d), _mm512_extracti64x4_epi64(d, 1));
    }
    // hadd twice: [b0 b2 b4 b6 b1 b3 b5 b7], then into block order.
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i sums = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return _mm256_sub_epi32(sums, _mm256_slli_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(x.sums)), 3));
  }
  static void prefetch(const uint8_t* w) {
    for (size_t l = 0; l < kRun * kBlockBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetch + l), _MM_HINT_T0);
  }
};

// The quantized rows (Q8_0 blocks, arow bytes apart) as XRuns, row i's run r at xr[i * runs + r], and
// their scales at ad[b * m + i].
void prepare(const uint8_t* act, size_t arow, int64_t m, int64_t nb, XRun* xr, float* ad) {
  const int64_t runs = (nb + kRun - 1) / kRun;
  for (int64_t i = 0; i < m; ++i) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(i) * arow);
    for (int64_t r = 0; r < runs; ++r) {
      XRun& x = xr[i * runs + r];
      for (int64_t j = 0; j < kRun; ++j) {
        const int64_t b = r * kRun + j;
        const int p = static_cast<int>(j / 2), odd = static_cast<int>(j % 2);
        int8_t* lo = x.qs + 64 * p + 16 * odd;
        if (b >= nb) {
          std::memset(lo, 0, 16), std::memset(lo + 32, 0, 16);
          x.sums[j] = 0;
          continue;
        }
        std::memcpy(lo, a[b].qs, 16), std::memcpy(lo + 32, a[b].qs + 16, 16);
        int32_t s = 0;
        for (int e = 0; e < 32; ++e) s += a[b].qs[e];
        x.sums[j] = s;
        ad[b * m + i] = _cvtsh_ss(a[b].d);
      }
    }
  }
}

// m > 1: per weight row, groups of up to kGroup activation rows; per chunk of runs, each run unpacked
// once for the group, its sums kept per (block, row), then the float steps 16 rows a vector.
void rows_k(const WeightView& w, const XRun* xr, const float* ad, int64_t m, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int64_t kGroup = 64, kChunk = 4;  // rows a group, runs a chunk
  const int64_t nb = w.cols / 32, runs = (nb + kRun - 1) / kRun;
  alignas(64) int32_t isum[kChunk * kRun][kGroup];
  alignas(64) float s[kGroup];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = base + static_cast<size_t>(n) * w.row_bytes;
    for (int64_t r0 = 0; r0 < m; r0 += kGroup) {
      const int64_t g = m - r0 < kGroup ? m - r0 : kGroup;
      for (int64_t v = 0; v < g; v += 16) _mm512_store_ps(s + v, _mm512_setzero_ps());
      for (int64_t c0 = 0; c0 < runs; c0 += kChunk) {
        const int64_t c1 = c0 + kChunk < runs ? c0 + kChunk : runs;
        for (int64_t c = c0; c < c1; ++c) {
          const uint8_t* wr = row + static_cast<size_t>(c * kRun) * kBlockBytes;
          Run::prefetch(wr);
          const Run run(wr, nb - c * kRun);
          for (int64_t r = 0; r < g; ++r) {
            alignas(32) int32_t out[kRun];
            _mm256_store_si256(reinterpret_cast<__m256i*>(out), run.dot(xr[(r0 + r) * runs + c]));
            for (int64_t j = 0; j < kRun; ++j) isum[(c - c0) * kRun + j][r] = out[j];
          }
        }
        const int64_t b1 = c1 * kRun < nb ? c1 * kRun : nb;
        for (int64_t v = 0; v < g; v += 16) {
          // Lanes past the group read as zeros (garbage could be subnormal: a microcode assist each).
          const __mmask16 live = g - v >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (g - v)) - 1);
          __m512 acc = _mm512_load_ps(s + v);
          for (int64_t b = c0 * kRun; b < b1; ++b) {
            acc = kq::block_step<GgmlType::Q4_0, __m512>(
                acc, _mm512_maskz_loadu_ps(live, ad + b * m + r0 + v), _mm512_set1_ps(_cvtsh_ss(kq::u16_at(row + b * kBlockBytes))),
                _mm512_setzero_ps(), _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(live, isum[b - c0 * kRun] + v)), _mm512_setzero_ps());
          }
          _mm512_store_ps(s + v, acc);
        }
      }
      for (int64_t r = 0; r < g; ++r) y[(r0 + r) * ldy + n] = s[r];
    }
  }
}

// m = 1 (decode): lane j of the float steps runs weight row t0 + j's chain (the scalar sum's
// operations in the same order); lanes past n1 repeat the last row and are dropped.
void rows_1(const WeightView& w, const XRun* xr, const float* ad, float* y, int64_t n0, int64_t n1) {
  constexpr int64_t kChunk = 16;  // runs a pass: 128 blocks, all of a 4096-wide row
  const int64_t nb = w.cols / 32, runs = (nb + kRun - 1) / kRun;
  alignas(64) int32_t isum[kChunk * kRun][16];
  alignas(64) float wd[kChunk * kRun][16];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t t0 = n0; t0 < n1; t0 += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < runs; c0 += kChunk) {
      const int64_t c1 = c0 + kChunk < runs ? c0 + kChunk : runs, b0 = c0 * kRun, b1 = c1 * kRun < nb ? c1 * kRun : nb;
      for (int64_t j = 0; j < 16; ++j) {
        const uint8_t* row = base + static_cast<size_t>(t0 + j < n1 ? t0 + j : n1 - 1) * w.row_bytes;
        for (int64_t c = c0; c < c1; ++c) {
          const uint8_t* wr = row + static_cast<size_t>(c * kRun) * kBlockBytes;
          Run::prefetch(wr);
          alignas(32) int32_t out[kRun];
          _mm256_store_si256(reinterpret_cast<__m256i*>(out), Run(wr, nb - c * kRun).dot(xr[c]));
          for (int64_t k = 0; k < kRun; ++k) isum[(c - c0) * kRun + k][j] = out[k];
        }
        for (int64_t b = b0; b < b1; ++b) wd[b - b0][j] = _cvtsh_ss(kq::u16_at(row + b * kBlockBytes));
      }
      for (int64_t b = b0; b < b1; ++b) {
        acc = kq::block_step<GgmlType::Q4_0, __m512>(acc, _mm512_set1_ps(ad[b]), _mm512_load_ps(wd[b - b0]), _mm512_setzero_ps(),
                                                      _mm512_cvtepi32_ps(_mm512_load_si512(isum[b - b0])), _mm512_setzero_ps());
      }
    }
    alignas(64) float out[16];
    _mm512_store_ps(out, acc);
    for (int64_t j = 0; j < 16 && t0 + j < n1; ++j) y[t0 + j] = out[j];
  }
}

}  // namespace

void matmul_range_q4_0_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                              int64_t n0, int64_t n1) {
  const size_t arow = kq::act_row_bytes(w);
  const int64_t nb = w.cols / 32, runs = (nb + kRun - 1) / kRun;
  // After the Q8_0 rows, 64-byte aligned: the XRuns, then the scales.
  const size_t act_bytes = (arow * static_cast<size_t>(m) + 63) / 64 * 64, xr_bytes = sizeof(XRun) * static_cast<size_t>(runs * m);
  uint8_t* act = kq::quantize_rows(w, x, ldx, m, act_bytes - arow * static_cast<size_t>(m) + xr_bytes + sizeof(float) * static_cast<size_t>(nb * m));
  auto* xr = reinterpret_cast<XRun*>(act + act_bytes);
  auto* ad = reinterpret_cast<float*>(act + act_bytes + xr_bytes);
  prepare(act, arow, m, nb, xr, ad);
  if (m == 1) return rows_1(w, xr, ad, y, n0, n1);
  rows_k(w, xr, ad, m, y, ldy, n0, n1);
}

}  // namespace specd::kernels
