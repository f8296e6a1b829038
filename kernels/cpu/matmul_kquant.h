// Products with Q4_0/Q4_K/Q5_K/Q6_K weights: X is quantized per row (Q8_0 for Q4_0, Q8_K for the K
// types, as llama.cpp does), the block products are integer, and each block's integer sum is scaled
// and added in one shared float expression (kq::block_step below).
//
// Determinism: the integer part is exact whatever the ISA sums it in, and the float part is the same
// source compiled everywhere with -ffp-contract=off, so a row's result is the same bits on every path,
// in any batch, on any thread split (tests/test_kquant.cpp checks all three). The paths differ only
// in speed. Private to kernels/cpu (static inline throughout: see matmul_impl.h).
#pragma once

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/quant_k.h"
#include "kernels/cpu/quant_k_impl.h"

#include <cstddef>

namespace specd::kernels {

// Scalar, AVX2 and AVX-512 VNNI versions (matmul_kquant_{scalar,avx2,avx512}.cpp); same signature as RangeFn.
void matmul_range_kq_scalar(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                            int64_t n0, int64_t n1);
void matmul_range_kq_avx2(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                          int64_t n0, int64_t n1);
void matmul_range_kq_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                            int64_t n0, int64_t n1);
// Its Q4_0 part (matmul_q4_0_avx512.cpp), which matmul_range_kq_avx512 calls for Q4_0 weights.
void matmul_range_q4_0_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                              int64_t n0, int64_t n1);

namespace kq {

// Byte offsets inside the weight blocks (read in place: rows in a mapped file are not aligned).
constexpr size_t kQ4_0Qs = offsetof(BlockQ4_0, qs);
constexpr size_t kKScales = offsetof(BlockQ4_K, scales);
constexpr size_t kQ4KQs = offsetof(BlockQ4_K, qs);
constexpr size_t kQ5KQh = offsetof(BlockQ5_K, qh), kQ5KQs = offsetof(BlockQ5_K, qs);
constexpr size_t kQ6KQh = offsetof(BlockQ6_K, qh), kQ6KScales = offsetof(BlockQ6_K, scales);
constexpr size_t kQ6KD = offsetof(BlockQ6_K, d);

static inline uint16_t u16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// One block's float step, the numerics every path shares: the sum runs over a row's blocks in order,
// each block adding its integer sums times (activation scale x weight scale). Q6_K's isum already
// holds its -32 offset; msum is the K types' minimums term (both converted to float, which is exact
// below 2^24). Keep the order: it defines the bits. F is float, or a GCC vector of floats taking one
// activation row per lane (the same IEEE operations lane by lane, so the same bits as one float).
template <GgmlType T, class F>
static inline F block_step(F s, F ad, F wd, F wdmin, F isum, F msum) {
  if constexpr (T == GgmlType::Q4_0) {
    return s + (wd * ad) * isum;
  } else if constexpr (T == GgmlType::Q6_K) {
    return s + (ad * wd) * isum;
  } else {
    s += (ad * wd) * isum;
    return s - (ad * wdmin) * msum;
  }
}

// One weight row against one quantized activation row. Ops supplies the fp16 decoding (exact, so
// F16C and the integer decoder agree) and the integer block sums:
//   q4_0(qs, x)        = sum (q - 8) x over 32
//   q4_k(qs, x, sc)    = sum_j sc[j] sum q x over sub-block j (8 x 32), q = 4-bit level
//   q5_k(qs, qh, x, sc) the same with 5-bit levels
//   q6_k(ql, qh, x, sc) = sum_g sc[g] sum q x over group g (16 x 16), q = unsigned 6-bit level
//   mins(bsums, mn)    = sum_j mn[j] (bsums[2j] + bsums[2j+1])  (the Q4_K/Q5_K minimums' term)
//   q6_off(bsums, sc)  = sum_g sc[g] bsums[g]                    (Q6_K's -32 offset, over 32)
template <class Ops, GgmlType T>
static inline float dot_row(const uint8_t* w, const uint8_t* act, int64_t k) {
  float s = 0.0f;
  if constexpr (T == GgmlType::Q4_0) {
    for (int64_t b = 0; b < k / 32; ++b, w += sizeof(BlockQ4_0), act += sizeof(BlockQ8_0)) {
      const int isum = Ops::q4_0(w + kQ4_0Qs, reinterpret_cast<const int8_t*>(act + 2));
      s = block_step<T, float>(s, Ops::half(u16_at(act)), Ops::half(u16_at(w)), 0.0f, static_cast<float>(isum), 0.0f);
    }
  } else {
    constexpr size_t wb = T == GgmlType::Q4_K ? sizeof(BlockQ4_K) : T == GgmlType::Q5_K ? sizeof(BlockQ5_K) : sizeof(BlockQ6_K);
    for (int64_t b = 0; b < k / kQK; ++b, w += wb, act += sizeof(BlockQ8_K)) {
      const auto* a = reinterpret_cast<const BlockQ8_K*>(act);
      if constexpr (T == GgmlType::Q6_K) {
        const auto* sc = reinterpret_cast<const int8_t*>(w + kQ6KScales);
        const int isum = Ops::q6_k(w, w + kQ6KQh, a->qs, sc) - 32 * Ops::q6_off(a->bsums, sc);
        s = block_step<T, float>(s, a->d, Ops::half(u16_at(w + kQ6KD)), 0.0f, static_cast<float>(isum), 0.0f);
      } else {
        uint8_t sc[8], mn[8];
        unpack_scale_min_k4(w + kKScales, sc, mn);
        const int msum = Ops::mins(a->bsums, mn);
        const int isum = T == GgmlType::Q4_K ? Ops::q4_k(w + kQ4KQs, a->qs, sc) : Ops::q5_k(w + kQ5KQs, w + kQ5KQh, a->qs, sc);
        s = block_step<T, float>(s, a->d, Ops::half(u16_at(w)), Ops::half(u16_at(w + 2)), static_cast<float>(isum),
                                 static_cast<float>(msum));
      }
    }
  }
  return s;
}

// Every (n, i) of the range, one dot_row each; T fixed so the block loop has no type dispatch.
template <class Ops, GgmlType T>
static inline void rows(const WeightView& w, const uint8_t* act, size_t arow, int64_t m, float* y, int64_t ldy,
                        int64_t n0, int64_t n1) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = base + static_cast<size_t>(n) * w.row_bytes;
    for (int64_t i = 0; i < m; ++i) y[i * ldy + n] = dot_row<Ops, T>(row, act + static_cast<size_t>(i) * arow, w.cols);
  }
}

// Bytes of one quantized activation row: Q8_0 blocks for Q4_0, Q8_K blocks for the K types.
static inline size_t act_row_bytes(const WeightView& w) {
  return w.type == GgmlType::Q4_0 ? static_cast<size_t>(w.cols / 32) * sizeof(BlockQ8_0)
                                  : static_cast<size_t>(w.cols / kQK) * sizeof(BlockQ8_K);
}

// The m rows of X quantized into this thread's scratch, act_row_bytes(w) apart, with `extra` more
// bytes of scratch after them for the caller.
static inline uint8_t* quantize_rows(const WeightView& w, const float* x, int64_t ldx, int64_t m, size_t extra = 0) {
  const size_t arow = act_row_bytes(w);
  uint8_t* act = thread_scratch(arow * static_cast<size_t>(m) + extra);
  for (int64_t i = 0; i < m; ++i) {
    if (w.type == GgmlType::Q4_0) {
      quantize_q8_0(x + i * ldx, w.cols, act + static_cast<size_t>(i) * arow);
    } else {
      quantize_q8_K(x + i * ldx, w.cols, act + static_cast<size_t>(i) * arow);
    }
  }
  return act;
}

// Y rows [0, m), columns [n0, n1): quantizes X into this thread's scratch, then one dot_row per element.
template <class Ops>
static inline void range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                         int64_t n0, int64_t n1) {
  const size_t arow = act_row_bytes(w);
  const uint8_t* act = quantize_rows(w, x, ldx, m);
  switch (w.type) {
    case GgmlType::Q4_0:
      return rows<Ops, GgmlType::Q4_0>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q4_K:
      return rows<Ops, GgmlType::Q4_K>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q5_K:
      return rows<Ops, GgmlType::Q5_K>(w, act, arow, m, y, ldy, n0, n1);
    case GgmlType::Q6_K:
      return rows<Ops, GgmlType::Q6_K>(w, act, arow, m, y, ldy, n0, n1);
    default:
      return;  // not a quantized-activation type: matmul.cpp never routes one here
  }
}

}  // namespace kq
}  // namespace specd::kernels
