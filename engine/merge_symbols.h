// The symbol list both tokenizers merge over (llama.cpp's llm_symbol): the text split into UTF-8
// characters, linked left and right, each merge growing one symbol and emptying its neighbour.
// Internal to engine/tokenizer.cpp (SentencePiece BPE) and engine/tokenizer_bpe.cpp (byte-level BPE).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace specd::engine::merge {

// A run of text in the merge list; n == 0 once merged into its left neighbour.
struct Symbol {
  const char* text;
  size_t n;
  int prev, next;
};

// unicode_len_utf8 from llama.cpp: the sequence length from the first byte's high nibble. A stray
// continuation byte counts 1 and 0xF8..0xFF count 4 (clipped at the end of the text).
inline size_t utf8_len(char c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(c) >> 4];
}

// text as one symbol per UTF-8 character, linked in order.
inline std::vector<Symbol> split_chars(std::string_view text) {
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8_len(text[off]), text.size() - off);
    const int index = static_cast<int>(sym.size());
    off += n;
    sym.push_back({text.data() + off - n, n, index - 1, off == text.size() ? -1 : index + 1});
  }
  return sym;
}

}  // namespace specd::engine::merge
