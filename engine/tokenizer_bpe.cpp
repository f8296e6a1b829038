// Tokenizer, byte-level BPE half (tokenizer.ggml.model "gpt2"): merges, pre-tokenizer, encoding.
#include "engine/byte_level.h"
#include "engine/merge_symbols.h"
#include "engine/tokenizer.h"

#include <algorithm>
#include <optional>

namespace specd::engine {
namespace {

using merge::Symbol;

constexpr const char* kMergesKey = "tokenizer.ggml.merges";
constexpr const char* kPreKey = "tokenizer.ggml.pre";

}  // namespace

// tokenizer.ggml.pre picks the pre-tokenizer (an unknown or missing one is an error, never a silent
// fallback); tokenizer.ggml.merges gives the ranks. A merge "a b" splits at its first space after
// the first byte, as llama.cpp splits it.
Status Tokenizer::load_bpe(const GgufFile& f) {
  if (!f.find(kPreKey))
    return make_error(SPECD_E_UNSUPPORTED, "byte-level BPE vocabulary without %s: its pre-tokenizer is unknown", kPreKey);
  auto pre = f.get_string(kPreKey);
  if (!pre) return make_error(SPECD_E_BAD_MODEL, "%s is not a string", kPreKey);
  auto p = PreTokenizer::create(*pre);
  if (!p) return p.error();
  pre_.emplace(std::move(p.value()));
  pre_name_ = std::string(*pre);

  const GgufValue* v = f.find(kMergesKey);
  if (!v) return make_error(SPECD_E_BAD_MODEL, "missing %s", kMergesKey);
  if (v->type != GgufValueType::ARRAY || v->elem_type != GgufValueType::STRING)
    return make_error(SPECD_E_BAD_MODEL, "%s is not an array of strings", kMergesKey);
  if (v->strings.size() > static_cast<size_t>(INT32_MAX))
    return make_error(SPECD_E_BAD_MODEL, "%s has too many entries (%zu)", kMergesKey, v->strings.size());
  ranks_.reserve(v->strings.size());
  for (size_t i = 0; i < v->strings.size(); ++i) {
    const std::string_view m = v->strings[i];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (sp == std::string_view::npos)
      return make_error(SPECD_E_BAD_MODEL, "%s[%zu] is not two pieces separated by a space", kMergesKey, i);
    ranks_.emplace(std::string(m), static_cast<int32_t>(i));  // a repeated merge keeps its first rank
  }
  return {};
}

int Tokenizer::bpe_rank(std::string_view left, std::string_view right, std::string& scratch) const {
  scratch.assign(left).append(" ").append(right);
  auto it = ranks_.find(std::string_view(scratch));
  return it == ranks_.end() ? -1 : it->second;
}

// llm_tokenizer_bpe_session::tokenize for one fragment: pre-tokenize, then merge each piece alone.
void Tokenizer::encode_bpe_fragment(std::string_view raw, std::vector<int32_t>& out) const {
  for (const auto& [off, len] : pre_->split(raw)) encode_bpe_word(byte_level_encode(raw.substr(off, len)), out);
}

void Tokenizer::encode_bpe_word(const std::string& word, std::vector<int32_t>& out) const {
  if (pre_->ignore_merges()) {
    const int32_t whole = find(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<Symbol> sym = merge::split_chars(word);
  std::string scratch;
  // The lowest merge rank first.
  merge::merge_best_first(sym, [&](const Symbol& l, const Symbol& r) -> std::optional<double> {
    const int rank = bpe_rank({l.text, l.n}, {r.text, r.n}, scratch);
    if (rank < 0) return std::nullopt;
    return -static_cast<double>(rank);
  });
  // A symbol that is no token falls back to its single bytes that are tokens (others are dropped,
  // as llama.cpp drops them).
  for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
    const Symbol& s = sym[static_cast<size_t>(i)];
    const int32_t id = find({s.text, s.n});
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (size_t j = 0; j < s.n; ++j) {
      const int32_t b = find({s.text + j, 1});
      if (b >= 0) out.push_back(b);
    }
  }
}

}  // namespace specd::engine
