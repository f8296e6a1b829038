// The symbol list both tokenizers merge over (llama.cpp's llm_symbol): the text split into UTF-8
// characters, linked left and right, each merge growing one symbol and emptying its neighbour.
// Internal to engine/tokenizer.cpp (SentencePiece BPE) and engine/tokenizer_bpe.cpp (byte-level BPE).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <queue>
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

// Merges adjacent symbols best-first until no adjacent pair can merge: priority_of(left, right)
// gives a pair's priority (std::optional<double>; nullopt: the pair cannot merge). The highest
// priority pops first and ties go to the leftmost pair, as llama.cpp's llm_bigram_spm and
// llm_bigram_bpe comparators order them (SentencePiece passes a piece's score, byte-level BPE the
// negated merge rank; both convert to double exactly). Each merge queues at most two new pairs, so
// this is O(n log n); a queued pair whose sides changed since (a symbol only grows, and a merged-away
// one has n == 0) is recognised by its size and skipped.
template <class PriorityOf>
void merge_best_first(std::vector<Symbol>& sym, PriorityOf priority_of) {
  struct Pair {
    int left, right;
    double priority;
    size_t size;
  };
  const auto pops_later = [](const Pair& a, const Pair& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(pops_later)> queue(pops_later);
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<size_t>(left)];
    const Symbol& r = sym[static_cast<size_t>(right)];
    if (const std::optional<double> p = priority_of(l, r)) queue.push({left, right, *p, l.n + r.n});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Pair b = queue.top();
    queue.pop();
    Symbol& l = sym[static_cast<size_t>(b.left)];
    Symbol& r = sym[static_cast<size_t>(b.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // a side was merged since the push
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
}

}  // namespace specd::engine::merge
