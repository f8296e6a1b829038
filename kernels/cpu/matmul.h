// Multi-row matrix products Y = X · Wᵀ with W stored as in the model file (F32/F16/BF16/Q8_0, and
// Q4_0/Q4_K/Q5_K/Q6_K through matmul_kquant.h: X quantized per row, integer block products).
//
// The whole engine's weight math goes through here. X has m rows of K f32 values; W is [N][K]
// row-major as GGUF stores it; Y is m rows of N f32. F16/BF16/Q8_0 weights are converted inside
// the kernel, never expanded at load. The ISA path (AVX2, AVX-512, AVX512-BF16, AMX-BF16) is chosen once
// at run time from CPUID (and, for AMX, the kernel's permission); SPECD_ISA=avx2|avx512|avx512bf16|amx|scalar
// forces one.
// Determinism: on a given path each Y element is summed in an order that depends only on K, so a
// row's result is the same bits whatever m, the N split or the thread count (a k-row verification
// reproduces 1-row decoding exactly). Scalar/AVX2/AVX-512 keep X in f32 and accumulate in f32;
// AVX512-BF16 and AMX (BF16 and F16 weights only; F32/Q8_0 stay on AVX-512) round X, and F16 weights,
// to bf16 and accumulate in f32, as llama.cpp does with its BF16 dot products.
#pragma once

#include "kernels/ggml_type.h"
#include "kernels/result.h"
#include "kernels/weight_view.h"
#include "kernels/cpu/thread_pool.h"

#include <cstddef>
#include <cstdint>

namespace specd::kernels {

enum class Isa { Scalar, Avx2, Avx512, Avx512Bf16, Amx };  // in order of preference
Isa active_isa();
const char* isa_name(Isa isa);
// Whether this CPU (and, for AMX, the kernel's permission) supports a path.
bool isa_supported(Isa isa);
// Whether $SPECD_ISA, when set, names a path this CPU supports. Errors: SPECD_E_INVALID_ARG for a
// name that is none of scalar|avx2|avx512|avx512bf16|amx, SPECD_E_UNSUPPORTED for a path the CPU
// lacks (both messages list what is valid). Programs refuse to start on either; a library that
// never asks gets the message on stderr and the nearest supported path at the first product.
Status isa_env_status();
// Force a path for tests and benchmarks; returns false and changes nothing if it is unsupported.
// Not thread-safe against concurrent matmul calls: set it before starting work.
bool set_isa(Isa isa);

// Y[i][n] = sum_k X[i][k] * W[n][k] for i < m, n < N. ldx/ldy are row strides in floats.
// Splits N across the pool; small products run on the calling thread. Allocation-free after the
// first call with a given m (scratch for packed activations is per worker and grows once).
void matmul(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
            ThreadPool& pool);

// The same over output rows [n_begin, n_end) on the calling thread (for callers that fuse their own regions).
void matmul_range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                  int64_t n_begin, int64_t n_end);

// Row j of W (an embedding row) converted to f32.
void weight_row_to_f32(const WeightView& w, int64_t j, float* out);

// Element conversions used by kernels, tools and tests.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);     // round to nearest even
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);    // round to nearest even
// Quantize n floats (n % 32 == 0) into Q8_0 blocks as llama.cpp does.
void quantize_q8_0(const float* x, int64_t n, void* out);

}  // namespace specd::kernels
