// ModelSummary: what a person asks of a model file before using it — architecture, parameter count,
// the share of each weight type and the file's size — read from a GGUF file's tensor table.
#pragma once

#include "engine/gguf_reader.h"

#include <cstdint>
#include <string>
#include <vector>

namespace specd::engine {

struct WeightTypeShare {
  std::string type;         // ggml's name: "F32", "Q4_K", ...
  uint64_t parameters = 0;  // elements stored in this type
  uint64_t bytes = 0;       // tensor bytes stored in this type
};

struct ModelSummary {
  std::string architecture;  // general.architecture; "" when the file does not say
  uint64_t parameters = 0;   // elements of every tensor (embeddings and norms included, as llama.cpp counts)
  uint64_t file_bytes = 0;
  std::vector<WeightTypeShare> types;  // largest share of bytes first; ties by name
};

// The summary of a file. Never fails: the reader has already validated every tensor's shape.
ModelSummary summarize_model(const GgufFile& file);

}  // namespace specd::engine
