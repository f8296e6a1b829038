// KvCache: free list, per-sequence block tables and lengths.
#include "engine/kv_cache.h"

#include <algorithm>

namespace specd::engine {

KvCache::KvCache(int32_t n_layers, int32_t kv_dim, int32_t ctx_len, KvCacheOptions opts)
    : ctx_len_(ctx_len), opts_(opts) {
  opts_.block_tokens = std::max(1, opts_.block_tokens);
  layout_ = {n_layers, kv_dim, opts_.block_tokens};
  // Never reserve more than all live sequences could use at full context.
  const size_t per_seq_blocks = static_cast<size_t>((ctx_len_ + opts_.block_tokens - 1) / opts_.block_tokens);
  const size_t useful = per_seq_blocks * static_cast<size_t>(std::max(1, opts_.max_seqs));
  const size_t fit = opts_.max_bytes / std::max<size_t>(1, bytes_per_block());
  n_blocks_ = static_cast<int32_t>(std::min(useful, fit));
  free_.reserve(static_cast<size_t>(n_blocks_));
  for (int32_t b = n_blocks_ - 1; b >= 0; --b) free_.push_back(b);
  seqs_.resize(static_cast<size_t>(std::max(1, opts_.max_seqs)));
  for (auto& s : seqs_) s.blocks.reserve(per_seq_blocks);
}

Result<SeqId> KvCache::create_seq() {
  for (size_t i = 0; i < seqs_.size(); ++i) {
    if (!seqs_[i].live) {
      seqs_[i].live = true;
      seqs_[i].len = 0;
      return static_cast<SeqId>(i);
    }
  }
  return make_error(SPECD_E_LIMIT, "too many live sequences (max %d)", opts_.max_seqs);
}

bool KvCache::valid(SeqId seq) const {
  return seq >= 0 && static_cast<size_t>(seq) < seqs_.size() && seqs_[static_cast<size_t>(seq)].live;
}

void KvCache::free_seq(SeqId seq) {
  if (!valid(seq)) return;
  truncate(seq, 0);
  seqs_[static_cast<size_t>(seq)].live = false;
}

int32_t KvCache::length(SeqId seq) const { return valid(seq) ? seqs_[static_cast<size_t>(seq)].len : 0; }

void KvCache::truncate(SeqId seq, int32_t len) {
  if (!valid(seq)) return;
  Seq& s = seqs_[static_cast<size_t>(seq)];
  s.len = std::clamp(len, 0, s.len);
  const size_t keep = static_cast<size_t>((s.len + opts_.block_tokens - 1) / opts_.block_tokens);
  while (s.blocks.size() > keep) {
    free_.push_back(s.blocks.back());
    s.blocks.pop_back();
  }
}

Status KvCache::reserve_one(SeqId seq) {
  if (!valid(seq)) return make_error(SPECD_E_INVALID_ARG, "unknown sequence %d", seq);
  Seq& s = seqs_[static_cast<size_t>(seq)];
  if (s.len >= ctx_len_)
    return make_error(SPECD_E_CONTEXT, "context length exceeded: sequence is at the model's %d positions", ctx_len_);
  if (static_cast<size_t>(s.len) < s.blocks.size() * static_cast<size_t>(opts_.block_tokens)) return {};
  if (free_.empty())
    return make_error(SPECD_E_KV_FULL, "kv cache full: all %d blocks of %d tokens are in use", n_blocks_,
                      opts_.block_tokens);
  s.blocks.push_back(free_.back());
  free_.pop_back();
  return {};
}

void KvCache::set_length(SeqId seq, int32_t len) { seqs_[static_cast<size_t>(seq)].len = len; }

int32_t KvCache::slot(SeqId seq, int32_t pos) const {
  const Seq& s = seqs_[static_cast<size_t>(seq)];
  return s.blocks[static_cast<size_t>(pos / opts_.block_tokens)] * opts_.block_tokens + pos % opts_.block_tokens;
}

std::span<const int32_t> KvCache::block_table(SeqId seq) const {
  if (!valid(seq)) return {};
  return seqs_[static_cast<size_t>(seq)].blocks;
}

}  // namespace specd::engine
