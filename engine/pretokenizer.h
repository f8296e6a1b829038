// PreTokenizer: the regex split that a byte-level BPE vocabulary names in tokenizer.ggml.pre.
#pragma once

#include "kernels/result.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace specd::engine {

// A chain of Unicode regexes (PCRE2 with UTF and UCP), applied as llama.cpp and Hugging Face's
// Split(behavior = Isolated) apply them: each regex runs over every piece the previous ones left,
// as its whole subject, and both the matches and the text between them become pieces. Invalid
// UTF-8 never matches, so such bytes end up in pieces of their own.
class PreTokenizer {
 public:
  // The regexes published for `pre` (tokenizer.ggml.pre), with whether whole words that are
  // tokens skip the merges (llama.cpp's ignore_merges). Errors: SPECD_E_UNSUPPORTED naming an
  // unknown pre; SPECD_E_INTERNAL when PCRE2 refuses a pattern (a specd bug).
  static Result<PreTokenizer> create(std::string_view pre);
  // The pre types create() accepts, for messages and the README.
  static std::vector<std::string_view> supported();

  // Byte ranges {offset, length} of the pieces of text, in order, covering it exactly.
  std::vector<std::pair<size_t, size_t>> split(std::string_view text) const;
  bool ignore_merges() const { return ignore_merges_; }
  const std::string& name() const { return name_; }

 private:
  struct Regex;  // a compiled pcre2_code, freed by its deleter
  std::vector<std::shared_ptr<const Regex>> regexes_;
  std::string name_;
  bool ignore_merges_ = false;
};

}  // namespace specd::engine
