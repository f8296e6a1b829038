// Block sizes, byte sizes and names of the ggml tensor types specd supports.
#include "kernels/ggml_type.h"

#include <algorithm>
#include <cctype>

namespace specd {

bool ggml_type_supported(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::Q4_0:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::BF16:
      return true;
  }
  return false;
}

bool ggml_type_quantized_act(GgmlType type) {
  return type == GgmlType::Q4_0 || type == GgmlType::Q4_K || type == GgmlType::Q5_K || type == GgmlType::Q6_K;
}

bool ggml_type_from_name(std::string_view name, GgmlType* out) {
  const auto same_letter = [](char a, char b) {
    return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b));
  };
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K,
                     GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::BF16}) {
    const std::string_view n = ggml_type_name(t);
    if (std::equal(n.begin(), n.end(), name.begin(), name.end(), same_letter)) {
      *out = t;
      return true;
    }
  }
  return false;
}

const char* ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return "F32";
    case GgmlType::F16:
      return "F16";
    case GgmlType::Q4_0:
      return "Q4_0";
    case GgmlType::Q8_0:
      return "Q8_0";
    case GgmlType::Q4_K:
      return "Q4_K";
    case GgmlType::Q5_K:
      return "Q5_K";
    case GgmlType::Q6_K:
      return "Q6_K";
    case GgmlType::BF16:
      return "BF16";
  }
  return "unknown";
}

int64_t ggml_block_elems(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q8_0:
      return 32;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return kQK;
    default:
      return 1;
  }
}

size_t ggml_block_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return 4;
    case GgmlType::F16:
    case GgmlType::BF16:
      return 2;
    case GgmlType::Q4_0:
      return sizeof(BlockQ4_0);
    case GgmlType::Q8_0:
      return sizeof(BlockQ8_0);
    case GgmlType::Q4_K:
      return sizeof(BlockQ4_K);
    case GgmlType::Q5_K:
      return sizeof(BlockQ5_K);
    case GgmlType::Q6_K:
      return sizeof(BlockQ6_K);
  }
  return 0;  // an unsupported number cast to GgmlType; callers check ggml_type_supported first
}

size_t ggml_row_bytes(GgmlType type, int64_t n) {
  if (n <= 0) return 0;
  return static_cast<size_t>(n / ggml_block_elems(type)) * ggml_block_bytes(type);
}

}  // namespace specd
