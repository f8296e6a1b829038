// Which stored type each tensor gets when a tool writes a model: one type for every matrix, or a
// llama.cpp-style K mix ("q4_k_m", "q5_k_m").
//
// The choices follow llama.cpp's llama_tensor_get_type for a LLaMA-family model without an importance
// matrix: output.weight in Q6_K whenever the base type is Q4_0 or a K type (Q8_0 and the float types
// keep it in the base type); in the mixes, attn_v and ffn_down in Q6_K on the layers use_more_bits
// picks (the first and last eighth, and every third in between); every other matrix in the base type. A matrix whose rows are not whole blocks of its type falls back to Q8_0 (or F32 when rows
// are not whole Q8_0 blocks either): llama.cpp would pick Q5_0/Q5_1 there, which specd does not read.
// One-row tensors (norm gains) are the caller's business: they stay F32.
#pragma once

#include "kernels/ggml_type.h"
#include "kernels/result.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace specd::tools {

struct QuantRecipe {
  GgmlType base = GgmlType::F32;
  bool k_mix = false;  // the _M mix on top of base (Q4_K or Q5_K)
  std::string name;    // as given, for messages
};

// "f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m|q5_k_m" (any case). SPECD_E_INVALID_ARG otherwise,
// naming the choices.
Result<QuantRecipe> parse_quant_recipe(std::string_view name);
extern const char* const kQuantRecipeChoices;

// The type of matrix `tensor` (a GGUF name such as "blk.3.ffn_down.weight") with rows of `cols`
// elements in a model of n_layers layers.
GgmlType recipe_type(const QuantRecipe& r, std::string_view tensor, int64_t cols, int64_t n_layers);

}  // namespace specd::tools
