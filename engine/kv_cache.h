// KvCache: paged K/V storage for many sequences, carved from one arena of fixed-size blocks.
//
// A block holds block_tokens positions of every layer's K and V (f32, K already RoPE'd at its
// position). Each sequence has a block table; growing takes a free block, freeing returns them.
// Limits are explicit: SPECD_E_KV_FULL when the arena has no free block, SPECD_E_CONTEXT past ctx_len.
#pragma once

#include "kernels/result.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specd::engine {

using SeqId = int32_t;

struct KvCacheOptions {
  int32_t block_tokens = 32;
  size_t max_bytes = size_t{1} << 30;  // arena size cap
  int32_t max_seqs = 64;
};

class KvCache {
 public:
  KvCache(int32_t n_layers, int32_t kv_dim, int32_t ctx_len, KvCacheOptions opts = {});

  // A new empty sequence. Errors: SPECD_E_LIMIT when max_seqs are live.
  Result<SeqId> create_seq();
  // Drop a sequence and return its blocks; unknown ids are ignored.
  void free_seq(SeqId seq);
  bool valid(SeqId seq) const;
  int32_t length(SeqId seq) const;
  // Shrink a sequence to len positions (len ≤ length), freeing whole blocks past it.
  void truncate(SeqId seq, int32_t len);

  // Make room for one more position and return pointers to its K and V slots for every layer:
  // the caller writes layer l's key at k + l*layer_stride(), then calls push_commit(). Errors: KV_FULL, CONTEXT.
  Status reserve_one(SeqId seq);
  float* key_slot(SeqId seq, int32_t layer, int32_t pos);
  float* value_slot(SeqId seq, int32_t layer, int32_t pos);
  void set_length(SeqId seq, int32_t len);  // after writing slots [length, len) reserved with reserve_one

  const float* key(SeqId seq, int32_t layer, int32_t pos) const;
  const float* value(SeqId seq, int32_t layer, int32_t pos) const;
  // Positions [b*block_tokens, ...) of one block are contiguous per layer: key(seq,l,p+1) == key(seq,l,p)+kv_dim
  // within a block, so attention walks block by block.
  int32_t block_tokens() const { return opts_.block_tokens; }
  int32_t kv_dim() const { return kv_dim_; }
  int32_t n_free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t n_blocks() const { return n_blocks_; }
  size_t bytes_per_block() const { return block_floats_ * sizeof(float); }

 private:
  struct Seq {
    bool live = false;
    int32_t len = 0;
    std::vector<int32_t> blocks;
  };
  float* slot(SeqId seq, int32_t layer, int32_t kv, int32_t pos);
  int32_t n_layers_, kv_dim_, ctx_len_;
  KvCacheOptions opts_;
  size_t block_floats_;
  int32_t n_blocks_;
  std::vector<float> arena_;
  std::vector<int32_t> free_;
  std::vector<Seq> seqs_;
};

}  // namespace specd::engine
