// DevicePool on the host: the offset allocator under the CUDA backend, tested without a GPU.
// The region is a fake address range (never dereferenced), so every path runs everywhere.
#include <doctest/doctest.h>

#include "kernels/cuda/device_pool.h"

#include <cstdint>
#include <string>
#include <vector>

using namespace specd::kernels;
using specd::Status;

namespace {

// A fake device base: 256-aligned and far from zero, like a cudaMalloc result.
void* fake_base(uintptr_t offset = 0) { return reinterpret_cast<void*>(uintptr_t{0x7f0000000000} + offset); }
uintptr_t addr(void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

TEST_CASE("device pool: aligned first-fit blocks charged by use") {
  MemLedger ledger;
  DevicePool pool(fake_base(), 4096, ledger);
  CHECK(pool.stats().capacity == 4096);
  auto a = pool.alloc(MemUse::Weights, 100);
  auto b = pool.alloc(MemUse::Kv, 256);
  auto c = pool.alloc(MemUse::Scratch, 0);  // 0 counts as 1: still a distinct block
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  REQUIRE(c.has_value());
  CHECK(addr(*a) == addr(fake_base()));
  CHECK(addr(*b) == addr(fake_base()) + 256);
  CHECK(addr(*c) == addr(fake_base()) + 512);
  for (void* p : {*a, *b, *c}) CHECK(addr(p) % DevicePool::kAlign == 0);
  CHECK(ledger.stats(MemUse::Weights).used == 256);  // rounded size is what is held
  CHECK(ledger.stats(MemUse::Kv).used == 256);
  CHECK(ledger.stats(MemUse::Scratch).used == 256);
  MemUse use{};
  size_t bytes = 0;
  CHECK(pool.lookup(*b, &use, &bytes));
  CHECK(use == MemUse::Kv);
  CHECK(bytes == 256);
  CHECK_FALSE(pool.lookup(fake_base(8), &use, &bytes));
  CHECK(pool.contains(*a, 4096));
  CHECK_FALSE(pool.contains(*b, 4096));
  CHECK_FALSE(pool.contains(fake_base(5000), 1));
  const DevicePoolStats s = pool.stats();
  CHECK(s.used == 768);
  CHECK(s.free == 4096 - 768);
  CHECK(s.live_blocks == 3);
  CHECK(s.free_blocks == 1);
  CHECK(s.fragmentation == 0.0);
  CHECK(pool.free(*a).has_value());
  CHECK(pool.free(*b).has_value());
  CHECK(pool.free(*c).has_value());
  CHECK(ledger.total_used() == 0);
  CHECK(pool.stats().free_blocks == 1);
}

TEST_CASE("device pool: an unaligned base is rounded inwards") {
  MemLedger ledger;
  DevicePool pool(fake_base(16), 1024, ledger);
  CHECK(pool.stats().capacity == 768);  // 240 bytes skipped, then whole 256-byte units
  auto a = pool.alloc(MemUse::Scratch, 1);
  REQUIRE(a.has_value());
  CHECK(addr(*a) == addr(fake_base()) + 256);
  DevicePool tiny(fake_base(16), 200, ledger);  // nothing aligned fits
  CHECK(tiny.stats().capacity == 0);
  auto t = tiny.alloc(MemUse::Scratch, 1);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().code == SPECD_E_NOMEM);
}

TEST_CASE("device pool: freed neighbours merge, so a large block fits again") {
  MemLedger ledger;
  DevicePool pool(fake_base(), 256 * 8, ledger);
  std::vector<void*> p;
  for (int i = 0; i < 8; ++i) {
    auto r = pool.alloc(MemUse::Scratch, 256);
    REQUIRE(r.has_value());
    p.push_back(*r);
  }
  CHECK(pool.stats().largest_free == 0);
  CHECK(pool.stats().fragmentation == 0.0);  // nothing free is not fragmented
  // Free every other block: 4 separate ranges, each too small for 512 bytes.
  for (int i = 0; i < 8; i += 2) REQUIRE(pool.free(p[static_cast<size_t>(i)]).has_value());
  DevicePoolStats s = pool.stats();
  CHECK(s.free_blocks == 4);
  CHECK(s.largest_free == 256);
  CHECK(s.fragmentation == doctest::Approx(0.75));
  auto big = pool.alloc(MemUse::Scratch, 512);
  REQUIRE_FALSE(big.has_value());
  CHECK(big.error().code == SPECD_E_NOMEM);
  CHECK(big.error().message.find("largest range 256") != std::string::npos);
  // Freeing block 1 joins ranges 0..2 (merge with both neighbours).
  REQUIRE(pool.free(p[1]).has_value());
  s = pool.stats();
  CHECK(s.free_blocks == 3);
  CHECK(s.largest_free == 768);
  // First fit: the 512-byte request lands at offset 0, the lowest range that fits.
  big = pool.alloc(MemUse::Scratch, 512);
  REQUIRE(big.has_value());
  CHECK(addr(*big) == addr(fake_base()));
  // Free the rest in an order that merges with the previous range only, then with the next only.
  REQUIRE(pool.free(p[3]).has_value());
  REQUIRE(pool.free(p[7]).has_value());
  REQUIRE(pool.free(p[5]).has_value());
  REQUIRE(pool.free(*big).has_value());
  s = pool.stats();
  CHECK(s.free_blocks == 1);
  CHECK(s.largest_free == 256 * 8);
  CHECK(s.used == 0);
  CHECK(ledger.stats(MemUse::Scratch).used == 0);
  CHECK(ledger.stats(MemUse::Scratch).peak == 256 * 8);
}

TEST_CASE("device pool: a budget refuses with the use's name and changes nothing") {
  MemLedger ledger;
  ledger.set_budget(MemUse::Kv, 1000);
  DevicePool pool(fake_base(), 1 << 20, ledger);
  auto a = pool.alloc(MemUse::Kv, 768);
  REQUIRE(a.has_value());
  auto b = pool.alloc(MemUse::Kv, 300);  // rounds to 512: 768 + 512 > 1000
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code == SPECD_E_NOMEM);
  CHECK(b.error().message.find("kv budget") != std::string::npos);
  const DevicePoolStats s = pool.stats();
  CHECK(s.used == 768);
  CHECK(s.live_blocks == 1);
  CHECK(s.free_blocks == 1);
  // Other uses are not limited by kv's budget.
  auto w = pool.alloc(MemUse::Weights, 4096);
  CHECK(w.has_value());
}

TEST_CASE("device pool: exhausted, oversized and bad frees are named errors") {
  MemLedger ledger;
  DevicePool pool(fake_base(), 1024, ledger);
  auto huge = pool.alloc(MemUse::Weights, SIZE_MAX);  // must not overflow the rounding
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().code == SPECD_E_NOMEM);
  CHECK(huge.error().message.find("weights") != std::string::npos);
  auto all = pool.alloc(MemUse::Weights, 1024);
  REQUIRE(all.has_value());
  auto more = pool.alloc(MemUse::Scratch, 1);
  REQUIRE_FALSE(more.has_value());
  CHECK(more.error().code == SPECD_E_NOMEM);
  CHECK(more.error().message.find("scratch") != std::string::npos);
  CHECK(ledger.stats(MemUse::Scratch).used == 0);  // a refused request is not charged

  CHECK(pool.free(nullptr).has_value());
  Status inner = pool.free(static_cast<char*>(*all) + 256);  // inside a block, not its start
  REQUIRE_FALSE(inner.has_value());
  CHECK(inner.error().code == SPECD_E_INVALID_ARG);
  Status below = pool.free(reinterpret_cast<void*>(uintptr_t{4096}));  // below the base
  REQUIRE_FALSE(below.has_value());
  CHECK(below.error().code == SPECD_E_INVALID_ARG);
  REQUIRE(pool.free(*all).has_value());
  Status twice = pool.free(*all);
  REQUIRE_FALSE(twice.has_value());
  CHECK(twice.error().code == SPECD_E_INVALID_ARG);
  CHECK(twice.error().message.find("double free") != std::string::npos);
  CHECK(pool.stats().free_blocks == 1);
  CHECK(ledger.total_used() == 0);
}
