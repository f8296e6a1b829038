// KvCache: the host-side bookkeeping of the paged K/V cache — free list, block tables, lengths.
//
// The storage itself is one backend buffer (MemUse::Kv) that the Forward using this cache
// allocates, storage_bytes() long and laid out as layout() says (kernels/kv_layout.h): a block holds
// block_tokens positions of every layer's K and V. Each sequence has a block table; growing takes
// a free block, shrinking returns whole blocks. Limits are explicit: SPECD_E_KV_FULL when no block is
// free, SPECD_E_CONTEXT past ctx_len.
#pragma once

#include "kernels/kv_layout.h"
#include "kernels/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace specd::engine {

using SeqId = int32_t;

struct KvCacheOptions {
  int32_t block_tokens = 32;
  size_t max_bytes = size_t{1} << 30;  // storage size cap
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

  // Make room for position length(seq) (taking a block when the last one is full); the caller
  // writes its K/V at slot(seq, pos) in the storage, then calls set_length. Errors: KV_FULL, CONTEXT,
  // INVALID_ARG (unknown sequence).
  Status reserve_one(SeqId seq);
  void set_length(SeqId seq, int32_t len);  // after writing slots [length, len) reserved with reserve_one
  // Storage slot of a reserved position: block * block_tokens + position within the block.
  int32_t slot(SeqId seq, int32_t pos) const;
  // The blocks holding seq's positions, in position order.
  std::span<const int32_t> block_table(SeqId seq) const;

  const kernels::KvLayout& layout() const { return layout_; }
  int32_t block_tokens() const { return layout_.block_tokens; }
  int32_t kv_dim() const { return layout_.kv_dim; }
  int32_t n_free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t n_blocks() const { return n_blocks_; }
  size_t bytes_per_block() const { return layout_.block_floats() * sizeof(float); }
  size_t storage_bytes() const { return static_cast<size_t>(n_blocks_) * bytes_per_block(); }

 private:
  struct Seq {
    bool live = false;
    int32_t len = 0;
    std::vector<int32_t> blocks;
  };
  kernels::KvLayout layout_;
  int32_t ctx_len_;
  KvCacheOptions opts_;
  int32_t n_blocks_;
  std::vector<int32_t> free_;
  std::vector<Seq> seqs_;
};

}  // namespace specd::engine
