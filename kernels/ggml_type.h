// Tensor element types as GGUF numbers them (ggml_type), with block sizes and byte sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace specd {

// Values are GGUF's on-disk numbers; only the types specd computes with are named.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

// True for the types above; any other on-disk number is rejected by the reader.
bool ggml_type_supported(uint32_t type);
const char* ggml_type_name(GgmlType type);
// The type named `name` ("F16", "f16", "Q8_0", "q8_0", ...: ggml_type_name in any case); false if none.
bool ggml_type_from_name(std::string_view name, GgmlType* out);
// Elements per block (32 for Q4_0/Q8_0, 256 for the K types, 1 otherwise) and bytes per block.
int64_t ggml_block_elems(GgmlType type);
size_t ggml_block_bytes(GgmlType type);
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t ggml_row_bytes(GgmlType type, int64_t n);

// Q8_0 block as llama.cpp stores it: an fp16 scale, then 32 int8 values.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

// The 4- to 6-bit types, byte for byte as llama.cpp's block_q4_0 / block_q4_K / block_q5_K / block_q6_K
// (ggml-common.h). Scales d/dmin are fp16 bits. Element order is documented in kernels/cpu/quant_k.cpp.
constexpr int kQK = 256;  // elements per K-type super-block (QK_K)

struct BlockQ4_0 {  // 32 elements: (q - 8) * d, q in 0..15; low nibbles are elements 0..15
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_K {  // 8 sub-blocks of 32: d * sc[j] * q - dmin * m[j], 6-bit sc/m packed in scales
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {  // as Q4_K with a fifth bit per element in qh
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {  // 16 sub-blocks of 16: d * scales[j] * (q - 32), q 6 bits (4 in ql, 2 in qh)
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Activations for the K-type dot products (llama.cpp's block_q8_K): never stored in a file.
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];  // sums of each 16 qs
};
static_assert(sizeof(BlockQ8_K) == 292);

// True for the block-quantised weight types whose products quantise the activations (Q4_0 and the K types).
bool ggml_type_quantized_act(GgmlType type);

}  // namespace specd
