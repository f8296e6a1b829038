// Batch: rows plus one visibility tile per sequence, grown only above their high-water marks.
#include "engine/batch.h"

#include <algorithm>

namespace specd::engine {

void Batch::reserve(int32_t rows) {
  const size_t n = static_cast<size_t>(std::max(rows, 0));
  rows_.reserve(n);
  row_group_.reserve(n);
  row_local_.reserve(n);
}

void Batch::clear() {
  for (int32_t g = 0; g < n_groups_; ++g) {
    Group& G = groups_[static_cast<size_t>(g)];
    std::fill_n(G.bits.begin(), G.rows.size() * static_cast<size_t>(G.words), 0);
    G.rows.clear();
  }
  rows_.clear();
  row_group_.clear();
  row_local_.clear();
  n_groups_ = 0;
  last_group_ = -1;
  n_outputs_ = 0;
  cross_row_ = -1;
}

int32_t Batch::group_for(SeqId seq) {
  if (last_group_ >= 0 && groups_[static_cast<size_t>(last_group_)].seq == seq) return last_group_;
  for (int32_t g = 0; g < n_groups_; ++g)
    if (groups_[static_cast<size_t>(g)].seq == seq) return last_group_ = g;
  if (static_cast<size_t>(n_groups_) == groups_.size()) groups_.emplace_back();
  groups_[static_cast<size_t>(n_groups_)].seq = seq;
  return last_group_ = n_groups_++;
}

void Batch::grow_tile(Group& g, int32_t rows) {
  // Growing re-lays the tile (its row stride changes), so keep the existing bits.
  const int32_t cap = std::max(rows, std::max(64, g.words * 64 * 2));
  const int32_t words = (cap + 63) / 64;
  std::vector<uint64_t> bits(static_cast<size_t>(words) * 64 * static_cast<size_t>(words), 0);
  for (size_t i = 0; i < g.rows.size(); ++i)
    std::copy_n(g.bits.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(g.words)), g.words,
                bits.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(words)));
  g.bits.swap(bits);
  g.words = words;
}

int32_t Batch::add(SeqId seq, int32_t token, int32_t pos, uint32_t flags) {
  const int32_t i = size();
  const int32_t gi = group_for(seq);
  Group& g = groups_[static_cast<size_t>(gi)];
  const int32_t local = static_cast<int32_t>(g.rows.size());
  if (local + 1 > g.words * 64) grow_tile(g, local + 1);
  g.rows.push_back(i);
  Row r{seq, token, pos, flags, -1};
  if (flags & (ROW_WANT_LOGITS | ROW_WANT_HIDDEN)) r.out_index = n_outputs_++;
  rows_.push_back(r);
  row_group_.push_back(gi);
  row_local_.push_back(local);
  see(i, i);
  return i;
}

void Batch::see(int32_t i, int32_t j) {
  const int32_t gi = row_group_[static_cast<size_t>(i)];
  if (gi != row_group_[static_cast<size_t>(j)]) {
    if (cross_row_ < 0) cross_row_ = i;
    return;
  }
  Group& g = groups_[static_cast<size_t>(gi)];
  const int32_t a = row_local_[static_cast<size_t>(i)], b = row_local_[static_cast<size_t>(j)];
  g.bits[static_cast<size_t>(a) * static_cast<size_t>(g.words) + static_cast<size_t>(b >> 6)] |= uint64_t{1} << (b & 63);
}

bool Batch::visible(int32_t i, int32_t j) const {
  const int32_t gi = row_group_[static_cast<size_t>(i)];
  if (gi != row_group_[static_cast<size_t>(j)]) return false;
  return groups_[static_cast<size_t>(gi)].sees(row_local_[static_cast<size_t>(i)], row_local_[static_cast<size_t>(j)]);
}

int32_t Batch::add_causal(SeqId seq, int32_t token, int32_t pos, uint32_t flags) {
  const int32_t i = add(seq, token, pos, flags);
  Group& g = groups_[static_cast<size_t>(row_group_[static_cast<size_t>(i)])];
  const int32_t local = row_local_[static_cast<size_t>(i)];
  uint64_t* w = g.bits.data() + static_cast<size_t>(local) * static_cast<size_t>(g.words);
  for (int32_t b = 0; b < local; b += 64)  // every earlier local row: whole words, then the tail
    w[b >> 6] |= local - b >= 64 ? ~uint64_t{0} : (uint64_t{1} << (local - b)) - 1;
  return i;
}

}  // namespace specd::engine
