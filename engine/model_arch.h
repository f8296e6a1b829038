// ModelArch: what each supported general.architecture adds to the LLaMA block, as data.
//
// The loader reads every hyper-parameter from the file's metadata under the architecture's prefix;
// what the metadata does not say (the RoPE pair layout llama.cpp fixes per architecture, which
// optional tensors the block has) is this table's. Adding an architecture that fits this block is
// one row here.
#pragma once

#include "kernels/backend.h"

#include <string>
#include <string_view>

namespace specd::engine {

struct ModelArch {
  const char* name;              // general.architecture
  kernels::RopeLayout rope;      // llama.cpp's LLAMA_ROPE_TYPE_NORM (Adjacent) or _NEOX
  bool qkv_bias;                 // blk.N.attn_{q,k,v}.bias, added after the projections (Qwen2)
  bool qk_norm;                  // blk.N.attn_{q,k}_norm.weight: RMSNorm of each head before RoPE (Qwen3)
};

// The row for an architecture name, or nullptr when this build has none.
const ModelArch* find_model_arch(std::string_view name);
// "llama, qwen2, qwen3": for the unsupported-architecture message.
std::string supported_model_archs();

}  // namespace specd::engine
