// Batch: the rows of one forward call — (sequence, token, position, visibility, wanted outputs).
//
// docs: ARCHITECTURE.md §3. Each row sees its sequence's committed KV plus the in-call rows its
// visibility set names (always itself). Rows of different sequences never see each other.
// Capacity is reserved up front; adding rows never allocates below it.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <span>
#include <vector>

namespace specd::engine {

using SeqId = int32_t;

enum RowFlags : uint32_t {
  ROW_WANT_LOGITS = 1u << 0,
  ROW_WANT_HIDDEN = 1u << 1,
};

struct Row {
  SeqId seq = 0;
  int32_t token = 0;
  int32_t pos = 0;       // absolute position id (RoPE), not per call
  uint32_t flags = 0;
  int32_t out_index = -1;  // index into the logits/hidden outputs, set by the batch
};

class Batch {
 public:
  explicit Batch(int32_t capacity_rows = 0) { reserve(capacity_rows); }
  void reserve(int32_t rows);
  void clear();

  // Append a row that sees only itself; returns its index. Errors: SPECD_E_LIMIT past capacity
  // when growth is disabled (never: the batch grows, allocating only above its high-water mark).
  int32_t add(SeqId seq, int32_t token, int32_t pos, uint32_t flags);
  // Let row i see row j (same sequence; checked by the forward).
  void see(int32_t i, int32_t j);
  // Convenience: row sees every earlier row of its sequence in this call (a causal chain).
  int32_t add_causal(SeqId seq, int32_t token, int32_t pos, uint32_t flags);
  bool visible(int32_t i, int32_t j) const {
    return (mask_[static_cast<size_t>(i) * words_ + static_cast<size_t>(j >> 6)] >> (j & 63)) & 1u;
  }

  int32_t size() const { return static_cast<int32_t>(rows_.size()); }
  int32_t n_outputs() const { return n_outputs_; }
  const Row& row(int32_t i) const { return rows_[static_cast<size_t>(i)]; }
  std::span<const Row> rows() const { return rows_; }

 private:
  void grow(int32_t rows);
  std::vector<Row> rows_;
  std::vector<uint64_t> mask_;  // rows x words_ bit matrix
  size_t words_ = 0;
  int32_t capacity_ = 0;
  int32_t n_outputs_ = 0;
};

}  // namespace specd::engine
