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
  Q8_0 = 8,
  BF16 = 30,
};

// True for the types above; any other on-disk number is rejected by the reader.
bool ggml_type_supported(uint32_t type);
const char* ggml_type_name(GgmlType type);
// The type named `name` ("F16", "f16", "Q8_0", "q8_0", ...: ggml_type_name in any case); false if none.
bool ggml_type_from_name(std::string_view name, GgmlType* out);
// Elements per block (32 for Q8_0, 1 otherwise) and bytes per block (34 for Q8_0).
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

}  // namespace specd
