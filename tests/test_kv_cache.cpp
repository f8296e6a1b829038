// KvCache: block accounting, limits and their named errors.
#include "engine/kv_cache.h"

#include <doctest/doctest.h>

using namespace specd;
using namespace specd::engine;

TEST_CASE("sequences take and return blocks") {
  KvCacheOptions o;
  o.block_tokens = 4;
  o.max_seqs = 3;
  KvCache kv(2, 8, 64, o);
  const int32_t total = kv.n_free_blocks();
  CHECK(total == 3 * 16);
  auto s = kv.create_seq();
  REQUIRE(s.has_value());
  for (int32_t p = 0; p < 9; ++p) {
    REQUIRE(kv.reserve_one(*s).has_value());
    kv.set_length(*s, p + 1);
  }
  CHECK(kv.length(*s) == 9);
  CHECK(kv.n_free_blocks() == total - 3);
  // Positions fill their blocks in order: slot = block * block_tokens + position within it, the
  // blocks named by the block table (attention walks it block by block).
  const auto table = kv.block_table(*s);
  REQUIRE(table.size() == 3);
  for (int32_t p = 0; p < 9; ++p) CHECK(kv.slot(*s, p) == table[static_cast<size_t>(p / 4)] * 4 + p % 4);
  CHECK(table[0] != table[1]);
  CHECK(table[1] != table[2]);
  CHECK(kv.storage_bytes() == static_cast<size_t>(kv.n_blocks()) * kv.bytes_per_block());
  CHECK(kv.bytes_per_block() == 2 * 2 * 4 * 8 * sizeof(float));
  kv.truncate(*s, 4);
  CHECK(kv.length(*s) == 4);
  CHECK(kv.n_free_blocks() == total - 1);
  kv.free_seq(*s);
  CHECK(kv.n_free_blocks() == total);
  CHECK_FALSE(kv.valid(*s));
}

TEST_CASE("limits: max sequences and a full arena") {
  KvCacheOptions o;
  o.block_tokens = 2;
  o.max_seqs = 2;
  // 2 layers x K/V x 2 tokens x kv_dim 4 floats = 128 bytes a block: room for 3 blocks.
  o.max_bytes = 3 * 128;
  KvCache kv(2, 4, 16, o);
  CHECK(kv.n_blocks() == 3);
  auto a = kv.create_seq();
  auto b = kv.create_seq();
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  auto c = kv.create_seq();
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().code == SPECD_E_LIMIT);
  int32_t p = 0;
  Status st;
  while ((st = kv.reserve_one(*a)).has_value()) kv.set_length(*a, ++p);
  CHECK(p == 6);
  CHECK(st.error().code == SPECD_E_KV_FULL);
  CHECK(st.error().message.find("kv cache full") != std::string::npos);
  // Freeing returns the blocks to the other sequences.
  kv.free_seq(*a);
  REQUIRE(kv.reserve_one(*b).has_value());
}

TEST_CASE("limits: context length") {
  KvCache kv(1, 4, 5);
  auto s = kv.create_seq();
  REQUIRE(s.has_value());
  for (int32_t p = 0; p < 5; ++p) {
    REQUIRE(kv.reserve_one(*s).has_value());
    kv.set_length(*s, p + 1);
  }
  auto e = kv.reserve_one(*s);
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error().code == SPECD_E_CONTEXT);
  CHECK(e.error().message.find("context length exceeded") != std::string::npos);
}

TEST_CASE("unknown sequences are refused or ignored, never crash") {
  KvCache kv(1, 4, 16);
  CHECK_FALSE(kv.valid(-1));
  CHECK_FALSE(kv.valid(1000));
  CHECK(kv.length(7) == 0);
  kv.free_seq(7);
  kv.truncate(7, 0);
  auto r = kv.reserve_one(7);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_INVALID_ARG);
}
