// Tensor type choice for the tools' --type (see quant_recipe.h for the rules and why).
#include "tools/quant_recipe.h"

#include <cctype>
#include <cstdlib>

namespace specd::tools {

const char* const kQuantRecipeChoices = "f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m|q5_k_m";

namespace {

// llama.cpp's use_more_bits: the layers whose attn_v / ffn_down get Q6_K in the _M mixes.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// "blk.N.<what>" -> N, or -1.
int64_t layer_of(std::string_view tensor) {
  if (tensor.substr(0, 4) != "blk.") return -1;
  int64_t n = 0;
  size_t i = 4;
  if (i >= tensor.size() || !std::isdigit(static_cast<unsigned char>(tensor[i]))) return -1;
  for (; i < tensor.size() && std::isdigit(static_cast<unsigned char>(tensor[i])); ++i) n = n * 10 + (tensor[i] - '0');
  return n;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<QuantRecipe> parse_quant_recipe(std::string_view name) {
  QuantRecipe r;
  r.name = std::string(name);
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view base = lower;
  if (lower == "q4_k_m" || lower == "q5_k_m") {
    r.k_mix = true;
    base = std::string_view(lower).substr(0, 4);
  }
  GgmlType t;
  if (!ggml_type_from_name(base, &t))
    return make_error(SPECD_E_INVALID_ARG, "unknown --type %s (%s)", r.name.c_str(), kQuantRecipeChoices);
  r.base = t;
  return r;
}

GgmlType recipe_type(const QuantRecipe& r, std::string_view tensor, int64_t cols, int64_t n_layers) {
  GgmlType t = r.base;
  if (tensor == "output.weight" && ggml_type_quantized_act(r.base)) {
    t = GgmlType::Q6_K;
  } else if (r.k_mix) {
    const int64_t layer = layer_of(tensor);
    if (layer >= 0 && (ends_with(tensor, ".attn_v.weight") || ends_with(tensor, ".ffn_down.weight")) &&
               use_more_bits(layer, n_layers)) {
      t = GgmlType::Q6_K;
    }
  }
  if (cols % ggml_block_elems(t) != 0) t = cols % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F32;
  return t;
}

}  // namespace specd::tools
