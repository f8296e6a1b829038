// Tokenizer: the vocabularies llama.cpp writes into GGUF (tokenizer.ggml.*): SentencePiece-BPE
// ("llama") and byte-level BPE ("gpt2" with a named pre-tokenizer); encode and decode.
#pragma once

#include "engine/gguf_reader.h"
#include "engine/pretokenizer.h"
#include "kernels/result.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace specd::engine {

class Tokenizer {
 public:
  enum class Kind { Spm, Bpe };

  // Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,unknown_token_id,
  // eot_token_id,eom_token_id,add_bos_token,add_eos_token,add_space_prefix}, and for model "gpt2"
  // also tokenizer.ggml.{merges,pre}. Needs no tensors, so vocabulary-only GGUF files load too.
  // Errors: SPECD_E_BAD_MODEL (missing/inconsistent arrays), SPECD_E_UNSUPPORTED (a model other than
  // "llama"/"gpt2", or a pre-tokenizer this build does not have, named in the message).
  static Result<Tokenizer> from_gguf(const GgufFile& file);

  // Encode text as llama.cpp's llama_tokenize does. Special tokens are cut out of the text first,
  // longest first: user-defined (type 4) ones always, control (3) and unknown (2) ones only when
  // parse_special (otherwise "<s>" or "<|im_end|>" in the text is plain text). BOS is prepended
  // when add_bos. "" gives no tokens besides BOS.
  // SPM: a leading space is prepended when add_space_prefix (default true) to the first fragment and
  // to each after a special token, spaces become U+2581, then merges by score; bytes with no piece
  // use <0xXX> byte-fallback tokens (UNK when the vocab has none).
  // BPE: the pre-tokenizer splits each fragment, each piece's bytes become GPT-2's byte alphabet and
  // merge by rank (tokenizer.ggml.merges order); a piece that is a token skips the merges when the
  // pre type says so (llama3).
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = false) const;
  // The model's own rule (llama_tokenize's add_special): BOS when add_bos_token() and EOS when
  // add_eos_token(), both only when add_special.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes of one token (SPM: <0xXX> pieces become the raw byte and U+2581 a space; BPE: GPT-2's
  // byte alphabet is undone, so a token may hold part of a UTF-8 character: stream through
  // Utf8Stream). Control, unknown and unused tokens become "", user-defined ones their text. SPM
  // only: when prev is BOS and the piece starts with a space, the space is dropped (llama2.c's
  // leading-space rule).
  std::string piece(int32_t prev, int32_t token) const;
  // Whole-sequence decode (SPM: applies the leading-space rule after a BOS).
  std::string decode(const std::vector<int32_t>& tokens) const;

  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }  // -1 when the vocab has none (byte-level BPE's default)
  // End of turn / end of message: tokenizer.ggml.eot_token_id / eom_token_id, else found by text as
  // llama.cpp does ("<|eot_id|>", "<|im_end|>", ...; "<|eom_id|>"); -1 when the vocab has none.
  int32_t eot() const { return eot_; }
  int32_t eom() const { return eom_; }
  Kind kind() const { return kind_; }
  // tokenizer.ggml.pre for BPE vocabularies, "" for SPM.
  const std::string& pre() const { return pre_name_; }
  // tokenizer.ggml.add_bos_token (default true for "llama" and llama3-style BPE, false for other
  // BPE, as in llama.cpp): whether callers should pass add_bos = true to encode() for a plain prompt.
  bool add_bos_token() const { return add_bos_; }
  bool add_eos_token() const { return add_eos_; }
  int32_t token_type(int32_t id) const { return types_[static_cast<size_t>(id)]; }
  const std::string& token_text(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }

 private:
  // Lets index_ be searched with a string_view, so the merge loop never builds a std::string.
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  int32_t find(std::string_view piece) const;  // -1 when not a piece
  Status build_tables();
  Status load_bpe(const GgufFile& f);
  void find_eot_eom(const GgufFile& f);
  void encode_fragment(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const;
  void encode_bpe_fragment(std::string_view raw, std::vector<int32_t>& out) const;
  void encode_bpe_word(const std::string& word, std::vector<int32_t>& out) const;
  int bpe_rank(std::string_view left, std::string_view right, std::string& scratch) const;

  std::vector<std::string> pieces_;   // as stored (with U+2581)
  std::vector<std::string> decoded_;  // what piece() emits for each id (before the BOS rule)
  std::vector<float> scores_;
  std::vector<int32_t> types_;        // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> index_;
  std::vector<int32_t> specials_;  // control, user-defined and unknown ids, longest piece first
  int32_t byte_tokens_[256] = {};
  int32_t bos_ = 1, eos_ = 2, unk_ = 0, eot_ = -1, eom_ = -1;
  bool add_bos_ = true;
  bool add_eos_ = false;
  bool add_space_prefix_ = true;
  Kind kind_ = Kind::Spm;
  // BPE only: "left right" -> rank (the merge's index in tokenizer.ggml.merges), and the pre-tokenizer.
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> ranks_;
  std::optional<PreTokenizer> pre_;
  std::string pre_name_;
};

}  // namespace specd::engine
