// The architecture table: llama (Llama 2/3.x, Mistral, SmolLM, TinyLlama), qwen2 (Qwen2/2.5), qwen3.
#include "engine/model_arch.h"

namespace specd::engine {
namespace {

using kernels::RopeLayout;

// llama.cpp's converter permutes llama's Q/K rows for the adjacent-pair rotation; the Qwen
// converters keep Hugging Face's halves, so llama.cpp rotates them NEOX-style (llama_model_rope_type).
constexpr ModelArch kArchs[] = {
    {"llama", RopeLayout::Adjacent, false, false},
    {"qwen2", RopeLayout::Neox, true, false},
    {"qwen3", RopeLayout::Neox, false, true},
};

}  // namespace

const ModelArch* find_model_arch(std::string_view name) {
  for (const ModelArch& a : kArchs)
    if (name == a.name) return &a;
  return nullptr;
}

std::string supported_model_archs() {
  std::string s;
  for (const ModelArch& a : kArchs) {
    if (!s.empty()) s.append(", ");
    s.append(a.name);
  }
  return s;
}

}  // namespace specd::engine
