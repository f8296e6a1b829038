// AVX2 integer block sums for the quantized-activation products: vpmaddubsw (unsigned weight level x
// signed activation, pairs to int16: at most 2 * 63 * 127, no saturation) then vpmaddwd by the
// sub-block scale.
//
// Each (weight block, activation block) sum is left unreduced (8 int32 lanes) and eight of them are
// reduced at once by one transposing tree (sum8x8); the float steps then run eight rows a vector,
// each lane doing kq::block_step's operations over its row's blocks in order: the same bits as the
// scalar dot_row for any m, thread split or ISA path (tests/test_kquant.cpp). The lanes are weight
// rows at m = 1 (rows_w) and activation rows otherwise (rows_k, which unpacks each weight block once
// for eight rows). Before, a horizontal sum per block and row, one serial float chain per row and an
// unpack per row made decode 3 to 5 times slower than reading the weights and a 16-row verify 5.5
// decodes (kernel-bench, 1B-shape matrices, 2 threads: Q4_0 129 ms, Q4_K 84 ms at m = 1, against
// 23-27 ms of plain reads).
#include "kernels/cpu/matmul_kquant.h"
#include "kernels/cpu/matmul_kquant_avx2_parts.h"

#include <immintrin.h>

namespace specd::kernels {
namespace {

// One weight block unpacked for the integer products: its levels as bytes and its sub-block scales
// as int16 vectors, made once and used against every activation row of the call (Q4_K's levels are
// two masks away, but the scale vectors and the packed 6-bit scales cost as much as the products).
// dot() leaves the sums unreduced (8 int32 lanes whose total is the sum): the level sum (Q6_K's with
// its -32 offset) in *isum, the minimums' term (Q4_K, Q5_K) in *msum. d() and dmin() are the block's
// fp16 scales, ad() an activation block's.
template <GgmlType T>
struct Unpacked;

template <>
struct Unpacked<GgmlType::Q4_0> {
  static constexpr size_t kW = sizeof(BlockQ4_0), kA = sizeof(BlockQ8_0);
  static constexpr int64_t kQ = 32;
  __m256i q;
  explicit Unpacked(const uint8_t* w) {  // the 16 bytes in both halves, the upper one shifted to the high nibbles
    const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kq::kQ4_0Qs)));
    q = _mm256_and_si256(_mm256_srlv_epi64(raw, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
  }
  void dot(const uint8_t* a, __m256i* isum, __m256i*) const {
    const __m256i xv = load32(a + 2);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv));
    *isum = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
  // sum q x without the -8 offset: rows_w subtracts 8 sum x (offset) once for eight weight rows
  __m256i levels(const uint8_t* a) const { return _mm256_madd_epi16(_mm256_maddubs_epi16(q, load32(a + 2)), _mm256_set1_epi16(1)); }
  static int32_t offset(const uint8_t* a) {
    int32_t s = 0;
    for (int e = 0; e < 32; ++e) s += static_cast<int8_t>(a[2 + e]);
    return 8 * s;
  }
  static float ad(const uint8_t* a) { return _cvtsh_ss(kq::u16_at(a)); }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w)); }
  static float dmin(const uint8_t*) { return 0.0f; }
};

// Two int16 scales, one per 16-value half of 32 products.
inline __m256i scale_pair(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo)));
}

// 8 x 32 unsigned levels times 256 activations, each 32 (Q6_K: 16) times its scale.
inline __m256i scaled_sum(const __m256i* q, const __m256i* sc, const int8_t* x) {
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q[c], load32(x + 32 * c)), sc[c]));
  return acc;
}

// Q4_K and Q5_K: 4-bit and 5-bit levels, eight 32-value sub-blocks with a scale and a minimum each.
template <GgmlType T>
struct UnpackedQ45 {
  static constexpr size_t kW = T == GgmlType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K), kA = sizeof(BlockQ8_K);
  static constexpr int64_t kQ = kQK;
  __m256i q[8], sc[8], mins;  // q[c], sc[c]: sub-block c; mins: m0 m0 m1 m1 ... against bsums
  explicit UnpackedQ45(const uint8_t* w) {
    uint8_t s[8], mn[8];
    unpack_scale_min_k4(w + kq::kKScales, s, mn);
    const __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
    mins = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const uint8_t* qs = w + (T == GgmlType::Q4_K ? kq::kQ4KQs : kq::kQ5KQs);
    __m256i h = _mm256_setzero_si256();
    if constexpr (T == GgmlType::Q5_K) h = load32(w + kq::kQ5KQh);
    for (int p = 0; p < 4; ++p) {
      const __m256i raw = load32(qs + 32 * p);
      q[2 * p] = _mm256_and_si256(raw, m4);
      q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      if constexpr (T == GgmlType::Q5_K) {
        q[2 * p] = _mm256_or_si256(q[2 * p], high_bits(h, 2 * p, 1));
        q[2 * p + 1] = _mm256_or_si256(q[2 * p + 1], high_bits(h, 2 * p + 1, 1));
      }
    }
    for (int c = 0; c < 8; ++c) sc[c] = scale_pair(s[c], s[c]);
  }
  void dot(const uint8_t* act, __m256i* isum, __m256i* msum) const {
    const auto* a = reinterpret_cast<const BlockQ8_K*>(act);
    *isum = scaled_sum(q, sc, a->qs);
    *msum = _mm256_madd_epi16(load32(a->bsums), mins);
  }
  static float ad(const uint8_t* a) { return reinterpret_cast<const BlockQ8_K*>(a)->d; }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w)); }
  static float dmin(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w + 2)); }
};
template <>
struct Unpacked<GgmlType::Q4_K> : UnpackedQ45<GgmlType::Q4_K> {
  using UnpackedQ45::UnpackedQ45;
};
template <>
struct Unpacked<GgmlType::Q5_K> : UnpackedQ45<GgmlType::Q5_K> {
  using UnpackedQ45::UnpackedQ45;
};

// Q6_K: unsigned 6-bit levels, sixteen 16-value groups with a signed scale each.
template <>
struct Unpacked<GgmlType::Q6_K> {
  static constexpr size_t kW = sizeof(BlockQ6_K), kA = sizeof(BlockQ8_K);
  static constexpr int64_t kQ = kQK;
  __m256i q[8], sc[8], s16;  // q[c], sc[c]: values 32c..32c+31 and their two groups' scales; s16: all 16
  explicit Unpacked(const uint8_t* w) {
    const auto* s = reinterpret_cast<const int8_t*>(w + kq::kQ6KScales);
    const uint8_t *ql = w, *qh = w + kq::kQ6KQh;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = load32(ql + 64 * half), l1 = load32(ql + 64 * half + 32), h = load32(qh + 32 * half);
      __m256i* o = q + 4 * half;
      o[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), high_bits(h, 0, 3));
      o[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), high_bits(h, 2, 3));
      o[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), high_bits(h, 4, 3));
      o[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), high_bits(h, 6, 3));
    }
    for (int c = 0; c < 8; ++c) sc[c] = scale_pair(s[2 * c], s[2 * c + 1]);
    s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
  }
  void dot(const uint8_t* act, __m256i* isum, __m256i*) const {
    const auto* a = reinterpret_cast<const BlockQ8_K*>(act);
    // the levels are unsigned: their -32 offset is 32 times the scaled group sums (exact in int32)
    const __m256i off = _mm256_madd_epi16(load32(a->bsums), s16);
    *isum = _mm256_sub_epi32(scaled_sum(q, sc, a->qs), _mm256_slli_epi32(off, 5));
  }
  static float ad(const uint8_t* a) { return reinterpret_cast<const BlockQ8_K*>(a)->d; }
  static float d(const uint8_t* w) { return _cvtsh_ss(kq::u16_at(w + kq::kQ6KD)); }
  static float dmin(const uint8_t*) { return 0.0f; }
};

constexpr int64_t kChunk = 32;       // blocks a pass: all of an 8192-wide K row, 1024 wide for Q4_0
constexpr size_t kPrefetch = 2048;   // weight bytes prefetched ahead, as in the other kernels
constexpr bool has_mins(GgmlType t) { return t == GgmlType::Q4_K || t == GgmlType::Q5_K; }

// Weight rows [n0, n1) eight at a time, lane j of the float steps weight row t0 + j (lanes past n1
// repeat the last row and are dropped), against each activation row in turn: decode (m = 1), and
// Q4_0 at small m, whose blocks are too small for rows_k's reduction to pay with few rows. Q4_0's
// -8 offset is one subtraction per block after the reduction (xoff[i * nb + b]: 8 sum x of activation
// row i's block b), not one per weight row.
template <GgmlType T>
void rows_w(const WeightView& w, const uint8_t* act, size_t arow, const int32_t* xoff, int64_t m, float* y,
            int64_t ldy, int64_t n0, int64_t n1) {
  using U = Unpacked<T>;
  const int64_t nb = w.cols / U::kQ;
  __m256i ip[kChunk][8], mp[kChunk][8];
  alignas(32) float wd[kChunk][8], wdmin[kChunk][8];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t t0 = n0; t0 < n1; t0 += 8)
    for (int64_t i = 0; i < m; ++i) {
    const uint8_t* a = act + static_cast<size_t>(i) * arow;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
      const int64_t b1 = b0 + kChunk < nb ? b0 + kChunk : nb;
      for (int64_t j = 0; j < 8; ++j) {
        const uint8_t* row = base + static_cast<size_t>(t0 + j < n1 ? t0 + j : n1 - 1) * w.row_bytes;
        for (int64_t b = b0; b < b1; ++b) {
          const uint8_t* wb = row + static_cast<size_t>(b) * U::kW;
          if (i == 0) {  // the later rows find the weights in cache
            for (size_t l = 0; l < U::kW; l += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetch + l), _MM_HINT_T0);
          }
          if constexpr (T == GgmlType::Q4_0)
            ip[b - b0][j] = U(wb).levels(a + static_cast<size_t>(b) * U::kA);
          else
            U(wb).dot(a + static_cast<size_t>(b) * U::kA, &ip[b - b0][j], &mp[b - b0][j]);
          wd[b - b0][j] = U::d(wb);
          wdmin[b - b0][j] = U::dmin(wb);
        }
      }
      for (int64_t b = b0; b < b1; ++b) {
        __m256i is = sum8x8(ip[b - b0]);
        if constexpr (T == GgmlType::Q4_0) is = _mm256_sub_epi32(is, _mm256_set1_epi32(xoff[i * nb + b]));
        const __m256 isum = _mm256_cvtepi32_ps(is);
        const __m256 msum = has_mins(T) ? _mm256_cvtepi32_ps(sum8x8(mp[b - b0])) : _mm256_setzero_ps();
        acc = kq::block_step<T, __m256>(acc, _mm256_set1_ps(U::ad(a + static_cast<size_t>(b) * U::kA)),
                                        _mm256_load_ps(wd[b - b0]), _mm256_load_ps(wdmin[b - b0]), isum, msum);
      }
    }
    alignas(32) float out[8];
    _mm256_store_ps(out, acc);
    for (int64_t j = 0; j < 8 && t0 + j < n1; ++j) y[i * ldy + t0 + j] = out[j];
  }
}

// m > 1: per weight row, activation rows eight at a time (lane r of the float steps row r0 + r);
// each weight block is unpacked once per eight rows. ad holds the activation scales block-major,
// ad[b * m + i], with 8 zeros after the last (lanes past m read them: zero sums and scales keep
// those lanes at zero, never a subnormal).
template <GgmlType T>
void rows_k(const WeightView& w, const uint8_t* act, size_t arow, const float* ad, int64_t m, float* y, int64_t ldy,
            int64_t n0, int64_t n1) {
  using U = Unpacked<T>;
  const int64_t nb = w.cols / U::kQ;
  __m256i ip[kChunk][8], mp[kChunk][8];
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = base + static_cast<size_t>(n) * w.row_bytes;
    for (int64_t r0 = 0; r0 < m; r0 += 8) {
      const int64_t g = m - r0 < 8 ? m - r0 : 8;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
        const int64_t b1 = b0 + kChunk < nb ? b0 + kChunk : nb;
        for (int64_t b = b0; b < b1; ++b) {
          const uint8_t* wb = row + static_cast<size_t>(b) * U::kW;
          if (r0 == 0) {
            for (size_t l = 0; l < U::kW; l += 64) _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetch + l), _MM_HINT_T0);
          }
          const U u(wb);
          const uint8_t* ab = act + static_cast<size_t>(r0) * arow + static_cast<size_t>(b) * U::kA;
          int64_t r = 0;
          for (; r < g; ++r, ab += arow) u.dot(ab, &ip[b - b0][r], &mp[b - b0][r]);
          for (; r < 8; ++r) ip[b - b0][r] = mp[b - b0][r] = _mm256_setzero_si256();
        }
        for (int64_t b = b0; b < b1; ++b) {
          const uint8_t* wb = row + static_cast<size_t>(b) * U::kW;
          const __m256 isum = _mm256_cvtepi32_ps(sum8x8(ip[b - b0]));
          const __m256 msum = has_mins(T) ? _mm256_cvtepi32_ps(sum8x8(mp[b - b0])) : _mm256_setzero_ps();
          acc = kq::block_step<T, __m256>(acc, _mm256_loadu_ps(ad + b * m + r0), _mm256_set1_ps(U::d(wb)),
                                          _mm256_set1_ps(U::dmin(wb)), isum, msum);
        }
      }
      alignas(32) float out[8];
      _mm256_store_ps(out, acc);
      for (int64_t r = 0; r < g; ++r) y[(r0 + r) * ldy + n] = out[r];
    }
  }
}

template <GgmlType T>
void rows_any(const WeightView& w, const uint8_t* act, size_t arow, float* ad, int64_t m, float* y, int64_t ldy,
              int64_t n0, int64_t n1) {
  using U = Unpacked<T>;
  const int64_t nb = w.cols / U::kQ;
  // kernel-bench, 1B-shape matrices: Q4_0 at m = 4 took 128 ms this way and 214 through rows_k
  if (m == 1 || (T == GgmlType::Q4_0 && m < 8)) {
    auto* xoff = reinterpret_cast<int32_t*>(ad);  // the scratch rows_k's scales would use
    if constexpr (T == GgmlType::Q4_0)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t b = 0; b < nb; ++b) xoff[i * nb + b] = U::offset(act + static_cast<size_t>(i) * arow + static_cast<size_t>(b) * U::kA);
    return rows_w<T>(w, act, arow, xoff, m, y, ldy, n0, n1);
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t b = 0; b < nb; ++b) ad[b * m + i] = U::ad(act + static_cast<size_t>(i) * arow + static_cast<size_t>(b) * U::kA);
  for (int64_t i = 0; i < 8; ++i) ad[nb * m + i] = 0.0f;
  rows_k<T>(w, act, arow, ad, m, y, ldy, n0, n1);
}

}  // namespace

void matmul_range_kq_avx2(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                          int64_t n0, int64_t n1) {
  const size_t arow = kq::act_row_bytes(w);
  const int64_t nb = w.cols / (w.type == GgmlType::Q4_0 ? 32 : kQK);
  // After the activations, 32-byte aligned: their scales block-major for rows_k, and 8 zeros.
  const size_t act_bytes = (arow * static_cast<size_t>(m) + 31) / 32 * 32;
  uint8_t* act = kq::quantize_rows(w, x, ldx, m, act_bytes - arow * static_cast<size_t>(m) + sizeof(float) * static_cast<size_t>(nb * m + 8));
  auto* ad = reinterpret_cast<float*>(act + act_bytes);
  switch (w.type) {
    case GgmlType::Q4_0:
      return rows_any<GgmlType::Q4_0>(w, act, arow, ad, m, y, ldy, n0, n1);
    case GgmlType::Q4_K:
      return rows_any<GgmlType::Q4_K>(w, act, arow, ad, m, y, ldy, n0, n1);
    case GgmlType::Q5_K:
      return rows_any<GgmlType::Q5_K>(w, act, arow, ad, m, y, ldy, n0, n1);
    case GgmlType::Q6_K:
      return rows_any<GgmlType::Q6_K>(w, act, arow, ad, m, y, ldy, n0, n1);
    default:
      return;  // not a quantized-activation type: matmul.cpp never routes one here
  }
}

}  // namespace specd::kernels
