// StepMeta: what one forward call's layers and backends need about its rows, built once per call.
//
// Modelled on vLLM's CommonAttentionMetadata: the host builds it once (engine/forward.cpp), every
// layer and every op reads it, and a device backend uploads it once per call (begin_step). Rows of
// different sequences never see each other, so visibility is block-diagonal and is stored as one
// tile per sequence (its rows × its rows, bit-packed), never as one rows × rows matrix: the cost of
// building, checking and reading it grows with the sum of squares of the per-sequence row counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace specd::kernels {

// One sequence's part of the call.
struct SeqTile {
  int32_t seq = 0;          // KV cache sequence id
  int32_t first = 0;        // index into StepMeta::row_ids of this sequence's first row
  int32_t n_rows = 0;       // its rows in this call
  int32_t kv_len = 0;       // committed positions it attends to before its own rows
  int32_t first_block = 0;  // index into StepMeta::block_ids of its block table
  int32_t n_blocks = 0;     // blocks holding its kv_len committed positions
  int64_t bits = 0;         // index into StepMeta::tile_bits of local row 0's words
  int32_t words = 0;        // 64-bit words per local row of the tile
};

// Device backends copy the tiles byte for byte.
static_assert(std::is_trivially_copyable_v<SeqTile>);

struct StepMeta {
  int32_t n_rows = 0;
  int32_t n_outputs = 0;
  int32_t max_kv_len = 0;  // the longest kv_len of any tile
  int32_t kv_capacity = 0; // the longest kv_len any call of this model can have (sizes scratch once)
  // Per row, in call order.
  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;        // absolute position (RoPE)
  std::vector<int32_t> row_tile;   // index into tiles
  std::vector<int32_t> row_local;  // index among its sequence's rows (row_ids[tile.first + local] == row)
  std::vector<int32_t> out_slot;   // output index, or -1 when the row wants no outputs
  // Per output slot: the row it comes from.
  std::vector<int32_t> out_rows;
  // Per sequence.
  std::vector<SeqTile> tiles;
  std::vector<int32_t> row_ids;    // rows grouped by sequence, each group in call order
  std::vector<int32_t> block_ids;  // the tiles' block tables, concatenated
  std::vector<uint64_t> tile_bits; // the tiles, concatenated: local row i sees local row j

  // Local row i of tile t sees local row j of the same tile.
  bool sees(const SeqTile& t, int32_t i, int32_t j) const {
    return (tile_bits[static_cast<size_t>(t.bits + static_cast<int64_t>(i) * t.words + (j >> 6))] >> (j & 63)) & 1u;
  }
  // Empty it, keeping capacity (steady-state calls do not allocate).
  void clear() {
    n_rows = n_outputs = max_kv_len = 0;  // kv_capacity stays: it belongs to the model
    tokens.clear(), pos.clear(), row_tile.clear(), row_local.clear(), out_slot.clear(), out_rows.clear();
    tiles.clear(), row_ids.clear(), block_ids.clear(), tile_bits.clear();
  }
};

}  // namespace specd::kernels
