// The 4- to 6-bit weight types (Q4_0, Q4_K, Q5_K, Q6_K): dequantization, the activation quantizers
// their dot products use (Q8_0, Q8_K), and the reference weight quantizers our tools write files with.
//
// All functions are pure and allocation-free; n must be a multiple of the type's block
// (ggml_block_elems: 32 for Q4_0, 256 for the K types). Callers check that (the GGUF reader and
// writer refuse rows that are not); here it is a precondition, not a checked error.
// Byte layouts are llama.cpp's (kernels/ggml_type.h), so files quantized by llama-quantize load as
// stored and ours load in llama.cpp.
#pragma once

#include "kernels/ggml_type.h"

#include <cstdint>

namespace specd::kernels {

// Row of n elements of a Q4_0/Q4_K/Q5_K/Q6_K row to f32, element for element what llama.cpp's
// dequantize_row_* gives.
void dequantize_row(GgmlType type, const void* row, int64_t n, float* out);

// llama.cpp's quantize_row_q8_K_ref: per 256 values, d = max/-127 (max: the value of largest
// magnitude), q = nearest(x/d) in [-127, 127], plus the sum of each 16 q (the K dot products use
// them for the sub-block minimums and Q6_K's offset).
void quantize_q8_K(const float* x, int64_t n, void* out);

// llama.cpp's reference quantizers (quantize_row_q4_0_ref, _q4_K_ref, _q5_K_ref, _q6_K_ref: what
// llama-quantize uses without an importance matrix), rewritten; type may also be Q8_0 (quantize_q8_0).
// Returns false, writing nothing, for any other type.
bool quantize_row(GgmlType type, const float* x, int64_t n, void* out);

}  // namespace specd::kernels
