// Tokenizer: special-token partition, decoded pieces, and llama.cpp's SPM tokenizer (tokenizer.ggml.model
// "llama"); loading is in tokenizer_load.cpp, the byte-level BPE half in tokenizer_bpe.cpp.
#include "engine/tokenizer.h"

#include "engine/byte_level.h"
#include "engine/merge_symbols.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace specd::engine {
namespace {

using merge::Symbol;
using merge::split_chars;

constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // U+2581, SentencePiece's space
// Token types that print something; unknown (2), control (3), unused (5) and others print nothing.
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

constexpr const char* kTokensKey = "tokenizer.ggml.tokens";

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(s, pos, hit - pos).append(to);
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

// "<0xAB>" -> 0xAB, or -1 when the text has another shape.
int parse_byte_piece(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (char c : s.substr(3, 2)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
          : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// The bytes an SPM token stands for, as llama.cpp's token_to_piece(special = false) gives them.
std::string decoded_piece(const std::string& text, int32_t type) {
  switch (type) {
    case kNormal: {
      std::string s = text;
      replace_all(s, kSpaceMark, " ");
      return s;
    }
    case kUserDefined: return text;
    case kByte: {
      int b = parse_byte_piece(text);
      return b < 0 ? text : std::string(1, static_cast<char>(b));
    }
    default: return "";  // unknown, control, unused and undefined types print nothing
  }
}

// A byte-level BPE token's bytes: normal tokens undo GPT-2's byte alphabet, user-defined ones are
// their text, and control, unknown, unused and byte-typed ones print nothing (llama.cpp's BPE case).
std::string decoded_bpe_piece(const std::string& text, int32_t type) {
  if (type == kNormal) return byte_level_decode(text);
  if (type == kUserDefined) return text;
  return "";
}

// A slice of the input: raw text (token < 0) or one user-defined token.
struct Fragment {
  int32_t token;
  size_t off, len;
};

// llama.cpp's tokenizer_st_partition: special pieces are cut out of the text before BPE, longest
// piece first, each at every leftmost non-overlapping occurrence; control and unknown ones only
// when parse_special.
std::vector<Fragment> partition(std::string_view text, const std::vector<int32_t>& ids,
                                const std::vector<std::string>& pieces, const std::vector<int32_t>& types,
                                bool parse_special) {
  std::vector<Fragment> frags{{-1, 0, text.size()}};
  for (int32_t id : ids) {
    const int32_t type = types[static_cast<size_t>(id)];
    if (!parse_special && (type == kControl || type == kUnknown)) continue;
    const std::string& p = pieces[static_cast<size_t>(id)];
    std::vector<Fragment> next;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      const size_t end = fr.off + fr.len;
      size_t pos = fr.off;
      for (size_t hit; (hit = text.substr(0, end).find(p, pos)) != std::string_view::npos;
           pos = hit + p.size()) {
        if (hit > pos) next.push_back({-1, pos, hit - pos});
        next.push_back({id, hit, p.size()});
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace

// The piece index, the byte-fallback table, decoded pieces and the special-token list.
Status Tokenizer::build_tables() {
  const auto n = static_cast<int32_t>(pieces_.size());
  index_.reserve(pieces_.size());
  for (int32_t id = 0; id < n; ++id) {
    auto [it, fresh] = index_.emplace(pieces_[static_cast<size_t>(id)], id);
    // llama.cpp asserts on this (its id->text and text->id maps must have the same size).
    if (!fresh)
      return make_error(SPECD_E_BAD_MODEL, "%s: piece of token %d repeats token %d", kTokensKey, id,
                        it->second);
  }
  // llama.cpp's byte_to_token: "<0xXX>", else the single byte as a piece; we use UNK where it throws.
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    int32_t id = find(name);
    if (id < 0) {
      const char one = static_cast<char>(b);
      id = find(std::string_view(&one, 1));
    }
    byte_tokens_[b] = id >= 0 ? id : unk_;
  }
  decoded_.resize(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (kind_ == Kind::Bpe) decoded_[i] = decoded_bpe_piece(pieces_[i], types_[i]);
    else decoded_[i] = (id == bos_ || id == eos_ || id == unk_) ? "" : decoded_piece(pieces_[i], types_[i]);
    if (types_[i] == kUserDefined || types_[i] == kControl || types_[i] == kUnknown) specials_.push_back(id);
  }
  // llama.cpp sorts special tokens longest first (std::sort; ties in id order here).
  std::stable_sort(specials_.begin(), specials_.end(), [&](int32_t a, int32_t b) {
    return pieces_[static_cast<size_t>(a)].size() > pieces_[static_cast<size_t>(b)].size();
  });
  return {};
}


int32_t Tokenizer::find(std::string_view piece) const {
  auto it = index_.find(piece);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out = encode(text, add_special && add_bos_, parse_special);
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 2 + 2);
  if (add_bos) out.push_back(bos_);
  if (text.empty()) return out;  // llama.cpp makes no fragment, so not even the space prefix
  bool prev_special = true;  // the first fragment, and each after a special token, gets the prefix
  for (const Fragment& fr : partition(text, specials_, pieces_, types_, parse_special)) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    if (kind_ == Kind::Bpe) encode_bpe_fragment(text.substr(fr.off, fr.len), out);
    else encode_fragment(text.substr(fr.off, fr.len), add_space_prefix_ && prev_special, out);
    prev_special = false;
  }
  return out;
}

// llm_tokenizer_spm_session::tokenize: start from UTF-8 characters and keep merging the best
// adjacent pair that is a piece (the highest score first).
void Tokenizer::encode_fragment(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const {
  std::string text(space_prefix ? " " : "");
  text += raw;
  replace_all(text, " ", kSpaceMark);
  if (text.empty()) return;
  std::vector<Symbol> sym = split_chars(text);
  // Symbols are contiguous in text, so a pair's merged piece is the left one's text, longer.
  merge::merge_best_first(sym, [&](const Symbol& l, const Symbol& r) -> std::optional<double> {
    const int32_t id = find(std::string_view(l.text, l.n + r.n));
    if (id < 0) return std::nullopt;
    return scores_[static_cast<size_t>(id)];
  });
  // Merged symbols are pieces by construction, so llama.cpp's rev_merge re-split never fires; a
  // single character that is no piece falls back to one byte token per byte.
  for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
    const Symbol& s = sym[static_cast<size_t>(i)];
    const int32_t id = find(std::string_view(s.text, s.n));
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (size_t j = 0; j < s.n; ++j) out.push_back(byte_tokens_[static_cast<uint8_t>(s.text[j])]);
  }
}

std::string Tokenizer::piece(int32_t prev, int32_t token) const {
  if (token < 0 || token >= vocab_size()) return "";
  const std::string& s = decoded_[static_cast<size_t>(token)];
  // llama2.c: the first piece after BOS loses its leading space (the space prefix added by encode).
  if (kind_ == Kind::Spm && prev == bos_ && !s.empty() && s[0] == ' ') return s.substr(1);
  return s;
}

std::string Tokenizer::decode(const std::vector<int32_t>& tokens) const {
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) out += piece(i == 0 ? -1 : tokens[i - 1], tokens[i]);
  return out;
}

}  // namespace specd::engine
