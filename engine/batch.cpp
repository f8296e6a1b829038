// Batch: row list plus a square visibility bit matrix, grown only above its high-water mark.
#include "engine/batch.h"

#include <algorithm>

namespace specd::engine {

void Batch::reserve(int32_t rows) {
  if (rows > capacity_) grow(rows);
}

void Batch::grow(int32_t rows) {
  // Growing re-lays the bit matrix (row stride changes), so keep the existing bits.
  const int32_t cap = std::max(rows, std::max(64, capacity_ * 2));
  const size_t words = (static_cast<size_t>(cap) + 63) / 64;
  std::vector<uint64_t> mask(static_cast<size_t>(cap) * words, 0);
  for (size_t i = 0; i < rows_.size(); ++i)
    std::copy_n(mask_.begin() + static_cast<std::ptrdiff_t>(i * words_), words_,
                mask.begin() + static_cast<std::ptrdiff_t>(i * words));
  mask_.swap(mask);
  words_ = words;
  capacity_ = cap;
  rows_.reserve(static_cast<size_t>(cap));
}

void Batch::clear() {
  for (size_t i = 0; i < rows_.size(); ++i)
    std::fill_n(mask_.begin() + static_cast<std::ptrdiff_t>(i * words_), words_, 0);
  rows_.clear();
  n_outputs_ = 0;
}

int32_t Batch::add(SeqId seq, int32_t token, int32_t pos, uint32_t flags) {
  const int32_t i = size();
  if (i + 1 > capacity_) grow(i + 1);
  Row r{seq, token, pos, flags, -1};
  if (flags & (ROW_WANT_LOGITS | ROW_WANT_HIDDEN)) r.out_index = n_outputs_++;
  rows_.push_back(r);
  see(i, i);
  return i;
}

void Batch::see(int32_t i, int32_t j) {
  mask_[static_cast<size_t>(i) * words_ + static_cast<size_t>(j >> 6)] |= uint64_t{1} << (j & 63);
}

int32_t Batch::add_causal(SeqId seq, int32_t token, int32_t pos, uint32_t flags) {
  const int32_t i = add(seq, token, pos, flags);
  for (int32_t j = 0; j < i; ++j)
    if (rows_[static_cast<size_t>(j)].seq == seq) see(i, j);
  return i;
}

}  // namespace specd::engine
