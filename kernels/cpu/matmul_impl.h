// Private interface between matmul dispatch and the per-ISA kernels, plus inline element conversions.
//
// Every ISA file is compiled with its own -m flags, so everything it defines must have internal
// linkage (anonymous namespace / static inline): a weak inline symbol built with AVX-512 could be
// picked by the linker for a caller on a machine without it. That is why the helpers below are
// `static inline` and why the ISA files use no std:: templates.
#pragma once

#include "kernels/cpu/matmul.h"

#include <cstdint>
#include <cstring>

namespace specd::kernels {

// Y rows [0, m), output columns [n0, n1) on the calling thread. All kernels accumulate each Y
// element in an order that depends only on K (never on m, n0/n1 or the thread count), so a row
// computed in a batch of m equals the same row computed alone, bit for bit, on a given ISA path.
using RangeFn = void (*)(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                         int64_t ldy, int64_t n0, int64_t n1);

void matmul_range_scalar(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                         int64_t ldy, int64_t n0, int64_t n1);
void matmul_range_avx2(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                       int64_t ldy, int64_t n0, int64_t n1);
void matmul_range_avx512(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                         int64_t ldy, int64_t n0, int64_t n1);
// AVX512-BF16 (vdpbf16ps) handles BF16 and F16 weights, rounding X and F16 weights to bf16 as AMX
// does; other types go to the AVX-512 kernel.
void matmul_range_avx512_bf16(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                              int64_t ldy, int64_t n0, int64_t n1);
// AMX-BF16 handles BF16 and F16 weights (F16 is rounded to BF16 on the fly; X is rounded to BF16).
// Other types must go to the AVX-512 kernel; the dispatcher does that.
void matmul_range_amx(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                      int64_t ldy, int64_t n0, int64_t n1);
// The same AMX code with the tile instructions emulated in software: tests use it to check the
// tile layouts (VNNI packing, C transposition, tails) on machines without AMX. Needs AVX-512F/BW/VL.
void matmul_range_amx_emulated(const WeightView& w, const float* x, int64_t ldx, int64_t m,
                               float* y, int64_t ldy, int64_t n0, int64_t n1);
bool bf16_types_supported(GgmlType type);  // BF16 and F16: the types the AVX512-BF16 and AMX paths take

// Per-thread 64-byte aligned scratch that grows once and is reused (defined in matmul.cpp, which is
// built without ISA flags, so the ISA files need no std::vector of their own).
uint8_t* thread_scratch(size_t bytes);
// Gives the calling thread kScratchReserve bytes of scratch now: pool workers and matmul's caller do
// this up front, because which thread takes a task is decided at run time, and a worker's first task
// may otherwise come in the middle of steady-state decoding. It covers every shape the bf16 paths use
// up to K = 16384 (they pack at most about 512 KiB of X per thread; AMX needs ~K/8 KiB).
constexpr size_t kScratchReserve = size_t{2} << 20;
void reserve_thread_scratch();

// CPU features (cpu_features.cpp).
struct CpuFeatures {
  bool avx2 = false;     // AVX2 + FMA + F16C with the OS saving ymm state
  bool avx512 = false;   // AVX-512 F/BW/VL/DQ with the OS saving zmm state
  bool avx512_bf16 = false;  // + AVX512-BF16 (vdpbf16ps)
  bool avx512_vnni = false;  // + AVX512-VNNI (vpdpbusd): the quantised-activation kernels' AVX-512 path
  bool amx_bf16 = false; // AMX-TILE + AMX-BF16 (CPUID and XCR0), before asking the kernel
};
const CpuFeatures& cpu_features();
// Asks Linux for the AMX tile-data permission once per process (ARCH_REQ_XCOMP_PERM); true if granted.
bool amx_permission();

// ---- element conversions, inline for the scalar kernel (convert.cpp exports the same) ----

static inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
static inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Exact: every half is a float. Integer-only so FTZ/DAZ modes cannot flush half subnormals.
static inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return bits_to_f32(sign | 0x7F800000u | (mant << 13));  // Inf, NaN payload kept
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_to_f32(sign);
  // Subnormal: mant * 2^-24; renormalize around its top bit p.
  const int p = 31 - __builtin_clz(mant);
  mant = (mant << (23 - p)) & 0x7FFFFFu;
  return bits_to_f32(sign | (static_cast<uint32_t>(p + 103) << 23) | mant);
}

static inline float bf16_bits_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }

// Weight element k of a row of an F32/F16/BF16 matrix, as f32 (scalar kernels and K tails).
static inline float weight_elem(GgmlType type, const uint8_t* row, int64_t k) {
  uint16_t h;
  switch (type) {
    case GgmlType::F16:
      std::memcpy(&h, row + 2 * k, 2);
      return f16_bits_to_f32(h);
    case GgmlType::BF16:
      std::memcpy(&h, row + 2 * k, 2);
      return bf16_bits_to_f32(h);
    default: {
      float f;
      std::memcpy(&f, row + 4 * k, 4);
      return f;
    }
  }
}

}  // namespace specd::kernels
