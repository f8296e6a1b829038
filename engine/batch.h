// Batch: the rows of one forward call — (sequence, token, position, visibility, wanted outputs).
//
// docs: ARCHITECTURE.md §3. Each row sees its sequence's committed KV plus the in-call rows its
// visibility set names (always itself). Rows of different sequences never see each other, so the
// visibility is kept per sequence: each sequence's rows form a group with its own bit tile (its rows
// × its rows), and a call's cost grows with the sum of the squares of the groups' sizes, not with
// the square of the call's rows. Storage is grow-only: after the largest call so far, building a
// call of the same shape never allocates.
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
  // One sequence's rows in this call and their visibility tile.
  struct Group {
    SeqId seq = 0;
    std::vector<int32_t> rows;   // the group's rows (batch indices), in call order
    std::vector<uint64_t> bits;  // tile: local row i sees local row j at bit j of word i*words + j/64
    int32_t words = 0;           // words per tile row (capacity / 64)
    bool sees(int32_t i, int32_t j) const {
      return (bits[static_cast<size_t>(i) * static_cast<size_t>(words) + static_cast<size_t>(j >> 6)] >> (j & 63)) & 1u;
    }
  };

  explicit Batch(int32_t capacity_rows = 0) { reserve(capacity_rows); }
  void reserve(int32_t rows);
  void clear();

  // Append a row that sees only itself; returns its index. Allocates only above the high-water mark.
  int32_t add(SeqId seq, int32_t token, int32_t pos, uint32_t flags);
  // Let row i see row j. Both must be rows of this batch; when they belong to different sequences
  // nothing is recorded but the batch remembers it, and the forward refuses the call
  // (SPECD_E_INVALID_ARG, see cross_sequence_row()).
  void see(int32_t i, int32_t j);
  // Convenience: row sees every earlier row of its sequence in this call (a causal chain).
  int32_t add_causal(SeqId seq, int32_t token, int32_t pos, uint32_t flags);
  // Row i sees row j (false for rows of different sequences).
  bool visible(int32_t i, int32_t j) const;

  int32_t size() const { return static_cast<int32_t>(rows_.size()); }
  int32_t n_outputs() const { return n_outputs_; }
  const Row& row(int32_t i) const { return rows_[static_cast<size_t>(i)]; }
  std::span<const Row> rows() const { return rows_; }
  // The groups, one per sequence in the call, in order of their first row.
  int32_t n_groups() const { return n_groups_; }
  const Group& group(int32_t g) const { return groups_[static_cast<size_t>(g)]; }
  int32_t group_of(int32_t row) const { return row_group_[static_cast<size_t>(row)]; }
  int32_t local_of(int32_t row) const { return row_local_[static_cast<size_t>(row)]; }
  // The first row asked to see a row of another sequence, or -1.
  int32_t cross_sequence_row() const { return cross_row_; }

 private:
  int32_t group_for(SeqId seq);
  void grow_tile(Group& g, int32_t rows);
  std::vector<Row> rows_;
  std::vector<int32_t> row_group_, row_local_;
  std::vector<Group> groups_;  // [0, n_groups_) in use; the rest keep their capacity for reuse
  int32_t n_groups_ = 0;
  int32_t last_group_ = -1;    // rows of one sequence usually arrive together
  int32_t n_outputs_ = 0;
  int32_t cross_row_ = -1;
};

}  // namespace specd::engine
