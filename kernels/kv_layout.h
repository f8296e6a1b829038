// KvLayout: where one position's K or V lives inside the KV cache's storage buffer.
//
// The storage is n_blocks blocks; a block holds block_tokens positions of every layer's K and V:
// planes [layer][k, v], each [block_tokens][kv_dim] f32 (K already rotated at its position). Within
// a block consecutive positions are kv_dim floats apart, so attention walks block by block.
#pragma once

#include <cstddef>
#include <cstdint>

namespace specd::kernels {

struct KvLayout {
  int32_t n_layers = 0;
  int32_t kv_dim = 0;
  int32_t block_tokens = 32;

  size_t block_floats() const {
    return static_cast<size_t>(n_layers) * 2 * static_cast<size_t>(block_tokens) * static_cast<size_t>(kv_dim);
  }
  // Float offset of (block, layer, kv: 0 = K, 1 = V, position within the block) from the storage base.
  size_t offset(int32_t block, int32_t layer, int32_t kv, int32_t within) const {
    const size_t plane = static_cast<size_t>(layer) * 2 + static_cast<size_t>(kv);
    return static_cast<size_t>(block) * block_floats() +
           (plane * static_cast<size_t>(block_tokens) + static_cast<size_t>(within)) * static_cast<size_t>(kv_dim);
  }
};

}  // namespace specd::kernels
