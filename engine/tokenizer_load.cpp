// Tokenizer, loading half: tokenizer.ggml.* metadata into a Tokenizer (no tensors are read).
#include "engine/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>

namespace specd::engine {
namespace {

constexpr int32_t kNormal = 1, kControl = 3;

// The metadata keys, named once so error messages and look-ups agree.
constexpr const char* kModelKey = "tokenizer.ggml.model";
constexpr const char* kTokensKey = "tokenizer.ggml.tokens";
constexpr const char* kScoresKey = "tokenizer.ggml.scores";
constexpr const char* kTypesKey = "tokenizer.ggml.token_type";

using U64 = unsigned long long;

Result<Tokenizer::Kind> check_model(const GgufFile& f) {
  const GgufValue* v = f.find(kModelKey);
  if (!v) return make_error(SPECD_E_BAD_MODEL, "missing %s", kModelKey);
  auto model = f.get_string(kModelKey);
  if (!model) return make_error(SPECD_E_BAD_MODEL, "%s is not a string", kModelKey);
  if (*model == "llama") return Tokenizer::Kind::Spm;
  if (*model == "gpt2") return Tokenizer::Kind::Bpe;
  return make_error(SPECD_E_UNSUPPORTED, "tokenizer model '%.*s' is not supported (only \"llama\" and \"gpt2\")",
                    static_cast<int>(model->size()), model->data());
}

// llama.cpp replaces an empty piece by "[EMPTY_<id>]" so every id keeps a distinct text.
Result<std::vector<std::string>> read_pieces(const GgufFile& f) {
  const GgufValue* v = f.find(kTokensKey);
  if (!v) return make_error(SPECD_E_BAD_MODEL, "missing %s", kTokensKey);
  if (v->type != GgufValueType::ARRAY || v->elem_type != GgufValueType::STRING)
    return make_error(SPECD_E_BAD_MODEL, "%s is not an array of strings", kTokensKey);
  if (v->strings.empty()) return make_error(SPECD_E_BAD_MODEL, "%s is empty", kTokensKey);
  if (v->strings.size() > static_cast<size_t>(INT32_MAX))
    return make_error(SPECD_E_BAD_MODEL, "%s has too many entries (%zu)", kTokensKey, v->strings.size());
  std::vector<std::string> pieces;
  pieces.reserve(v->strings.size());
  for (std::string_view s : v->strings) {
    if (!s.empty()) {
      pieces.emplace_back(s);
      continue;
    }
    std::string empty("[EMPTY_");
    empty.append(std::to_string(pieces.size())).append("]");
    pieces.push_back(std::move(empty));
  }
  return pieces;
}

// An optional per-token array; `accept` names the element types allowed. Absent gives nullptr.
Result<const GgufValue*> optional_array(const GgufFile& f, const char* key, size_t n,
                                        std::initializer_list<GgufValueType> accept) {
  const GgufValue* v = f.find(key);
  if (!v) return static_cast<const GgufValue*>(nullptr);
  if (v->type != GgufValueType::ARRAY ||
      std::find(accept.begin(), accept.end(), v->elem_type) == accept.end())
    return make_error(SPECD_E_BAD_MODEL, "%s has the wrong type", key);
  if (v->count != n)
    return make_error(SPECD_E_BAD_MODEL, "%s has %llu entries but %s has %zu", key,
                      static_cast<U64>(v->count), kTokensKey, n);
  return v;
}

// A special-token id: absent keeps the default (-1: none); present must be an integer inside the vocab.
Result<int32_t> read_id(const GgufFile& f, const char* key, int32_t def, size_t n) {
  if (!f.find(key) && def < 0) return def;
  uint64_t id = static_cast<uint64_t>(def);
  if (f.find(key)) {
    auto u = f.get_uint(key);
    if (!u) return make_error(SPECD_E_BAD_MODEL, "%s is not an unsigned integer", key);
    id = *u;
  }
  if (id >= n) return make_error(SPECD_E_BAD_MODEL, "%s = %llu is outside the vocab (%zu tokens)", key,
                                 static_cast<U64>(id), n);
  return static_cast<int32_t>(id);
}

Result<bool> read_flag(const GgufFile& f, const char* key, bool def) {
  if (!f.find(key)) return def;
  auto b = f.get_bool(key);
  if (!b) return make_error(SPECD_E_BAD_MODEL, "%s is not a bool", key);
  return *b;
}

// The special ids and flags; `s` holds llama.cpp's defaults for the model kind.
struct Specials {
  int32_t bos = 1, eos = 2, unk = 0, eot = -1, eom = -1;
  bool add_bos = true, add_eos = false, add_space_prefix = true;
};

Result<Specials> read_specials(const GgufFile& f, size_t n, Specials s) {
  auto bos = read_id(f, "tokenizer.ggml.bos_token_id", s.bos, n);
  if (!bos) return bos.error();
  auto eos = read_id(f, "tokenizer.ggml.eos_token_id", s.eos, n);
  if (!eos) return eos.error();
  auto unk = read_id(f, "tokenizer.ggml.unknown_token_id", s.unk, n);
  if (!unk) return unk.error();
  auto eot = read_id(f, "tokenizer.ggml.eot_token_id", s.eot, n);
  if (!eot) return eot.error();
  auto eom = read_id(f, "tokenizer.ggml.eom_token_id", s.eom, n);
  if (!eom) return eom.error();
  auto add_bos = read_flag(f, "tokenizer.ggml.add_bos_token", s.add_bos);
  if (!add_bos) return add_bos.error();
  auto add_eos = read_flag(f, "tokenizer.ggml.add_eos_token", s.add_eos);
  if (!add_eos) return add_eos.error();
  auto add_space = read_flag(f, "tokenizer.ggml.add_space_prefix", s.add_space_prefix);
  if (!add_space) return add_space.error();
  s.bos = *bos;
  s.eos = *eos;
  s.unk = *unk;
  s.eot = *eot;
  s.eom = *eom;
  s.add_bos = *add_bos;
  s.add_eos = *add_eos;
  s.add_space_prefix = *add_space;
  return s;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  auto kind = check_model(f);
  if (!kind) return kind.error();
  auto pieces = read_pieces(f);
  if (!pieces) return pieces.error();
  const size_t n = pieces->size();
  auto scores = optional_array(f, kScoresKey, n, {GgufValueType::FLOAT32, GgufValueType::INT32});
  if (!scores) return scores.error();
  auto types = optional_array(f, kTypesKey, n, {GgufValueType::INT32});
  if (!types) return types.error();

  Tokenizer t;
  t.kind_ = *kind;
  t.pieces_ = std::move(pieces.value());
  // Without the arrays llama.cpp scores every piece 0 and calls it normal; we do the same.
  t.scores_.assign(n, 0.0f);
  t.types_.assign(n, kNormal);
  for (size_t i = 0; i < n; ++i) {
    if (*scores) t.scores_[i] = static_cast<float>(GgufFile::array_float(**scores, i));
    if (*types) t.types_[i] = static_cast<int32_t>(GgufFile::array_int(**types, i));
  }

  Specials defaults;
  if (t.kind_ == Kind::Bpe) {
    SPECD_TRY(t.load_bpe(f));
    // llama.cpp's gpt2 defaults: BOS = EOS = 11, no UNK, no space prefix; BOS added for llama3 types.
    defaults = {11, 11, -1, -1, -1, t.pre_->ignore_merges(), false, false};
  }
  auto sp = read_specials(f, n, defaults);
  if (!sp) return sp.error();
  t.bos_ = sp->bos;
  t.eos_ = sp->eos;
  t.unk_ = sp->unk;
  t.eot_ = sp->eot;
  t.eom_ = sp->eom;
  t.add_bos_ = sp->add_bos;
  t.add_eos_ = sp->add_eos;
  t.add_space_prefix_ = sp->add_space_prefix;
  t.find_eot_eom(f);
  SPECD_TRY(t.build_tables());
  return t;
}

// llama.cpp finds end-of-turn/-message tokens by their text when the ids are not in the metadata,
// and makes such tokens control tokens (so they are never plain text nor printed).
void Tokenizer::find_eot_eom(const GgufFile& f) {
  static constexpr std::string_view kEot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                              "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
                                              "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"  // DeepSeek,
                                              "<end_of_utterance>"};
  const bool find_eot = !f.find("tokenizer.ggml.eot_token_id");
  const bool find_eom = !f.find("tokenizer.ggml.eom_token_id");
  size_t eot_rank = std::size(kEot);  // the earliest text in kEot wins, whatever the ids' order
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const std::string& p = pieces_[i];
    const size_t rank = static_cast<size_t>(std::find(std::begin(kEot), std::end(kEot), p) - std::begin(kEot));
    const bool is_eom = p == "<|eom_id|>";
    if (rank == std::size(kEot) && !is_eom) continue;
    types_[i] = kControl;
    if (rank < eot_rank && find_eot) {
      eot_ = static_cast<int32_t>(i);
      eot_rank = rank;
    }
    if (is_eom && find_eom) eom_ = static_cast<int32_t>(i);
  }
}

}  // namespace specd::engine
