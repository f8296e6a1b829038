// WeightView: a weight matrix as a backend holds it — [rows][cols] in its stored GGUF type.
#pragma once

#include "kernels/ggml_type.h"

#include <cstddef>
#include <cstdint>

namespace specd::kernels {

struct WeightView {
  GgmlType type = GgmlType::F32;
  const void* data = nullptr;  // backend memory (for the CPU backend: host memory, often the mapped file)
  int64_t rows = 0;            // N (output features)
  int64_t cols = 0;            // K (input features)
  size_t row_bytes = 0;        // bytes between consecutive rows
};

}  // namespace specd::kernels
