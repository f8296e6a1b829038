// Tokenizer: SentencePiece-BPE as llama.cpp writes it into GGUF (tokenizer.ggml.*), encode/decode.
#pragma once

#include "engine/gguf_reader.h"
#include "kernels/result.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace specd::engine {

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,unknown_token_id,
  // add_bos_token,add_space_prefix}. Only model "llama" (SPM-BPE) is supported.
  // Errors: SPECD_E_BAD_MODEL (missing/inconsistent arrays), SPECD_E_UNSUPPORTED (other models).
  static Result<Tokenizer> from_gguf(const GgufFile& file);

  // Encode text as llama.cpp does for SPM: a leading space is prepended when add_space_prefix
  // (default true), spaces become U+2581, then BPE merges by score; bytes with no piece use
  // <0xXX> byte-fallback tokens (UNK when the vocab has none). BOS is prepended when add_bos.
  // As llama.cpp with parse_special = false: user-defined (type 4) pieces are cut out first and the
  // text after each gets the space prefix again; "<s>" in the text is plain text; "" gives no
  // tokens besides BOS.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;

  // The bytes of one token: <0xXX> pieces become the raw byte, U+2581 becomes a space, control
  // tokens (BOS/EOS/UNK) become "". When prev is BOS and the piece starts with a space, the space
  // is dropped (llama2.c's leading-space rule).
  std::string piece(int32_t prev, int32_t token) const;
  // Whole-sequence decode (applies the leading-space rule after a BOS).
  std::string decode(const std::vector<int32_t>& tokens) const;

  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  // tokenizer.ggml.add_bos_token (default true for "llama", as in llama.cpp): whether callers should
  // pass add_bos = true to encode() for a plain prompt.
  bool add_bos_token() const { return add_bos_; }
  const std::string& token_text(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }

 private:
  // Lets index_ be searched with a string_view, so the merge loop never builds a std::string.
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  int32_t find(std::string_view piece) const;  // -1 when not a piece
  Status build_tables();
  void encode_fragment(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const;

  std::vector<std::string> pieces_;   // as stored (with U+2581)
  std::vector<std::string> decoded_;  // what piece() emits for each id (before the BOS rule)
  std::vector<float> scores_;
  std::vector<int32_t> types_;        // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> index_;
  std::vector<int32_t> user_defined_;  // type-4 ids, longest piece first: split out before BPE
  int32_t byte_tokens_[256] = {};
  int32_t bos_ = 1, eos_ = 2, unk_ = 0;
  bool add_bos_ = true;
  bool add_space_prefix_ = true;
};

}  // namespace specd::engine
