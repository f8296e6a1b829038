// DevicePool: first-fit offset allocator with coalescing; see device_pool.h for the policy.
#include "kernels/cuda/device_pool.h"

#include <algorithm>
#include <iterator>

namespace specd::kernels {

DevicePool::DevicePool(void* base, size_t bytes, MemLedger& ledger) : ledger_(ledger) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(base);
  const uintptr_t aligned = (b + (kAlign - 1)) & ~static_cast<uintptr_t>(kAlign - 1);
  const size_t skip = static_cast<size_t>(aligned - b);
  base_ = aligned;
  capacity_ = bytes > skip ? (bytes - skip) & ~(kAlign - 1) : 0;
  if (capacity_ > 0) free_.emplace(0, capacity_);
}

Result<void*> DevicePool::alloc(MemUse use, size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > capacity_)  // also keeps the rounding below from overflowing
    return make_error(SPECD_E_NOMEM, "device pool: %zu bytes of %s asked, the pool holds %zu", bytes,
                      mem_use_name(use), capacity_);
  const size_t size = (bytes + (kAlign - 1)) & ~(kAlign - 1);
  auto it = std::find_if(free_.begin(), free_.end(), [&](const auto& f) { return f.second >= size; });
  if (it == free_.end()) {
    const DevicePoolStats s = stats();
    return make_error(SPECD_E_NOMEM,
                      "device pool: no free range of %zu bytes for %s (%zu free, largest range %zu)", size,
                      mem_use_name(use), s.free, s.largest_free);
  }
  // Charge before changing anything, so a refused budget leaves the pool as it was.
  SPECD_TRY(ledger_.charge(use, size));
  const size_t off = it->first;
  const size_t rest = it->second - size;
  free_.erase(it);
  if (rest > 0) free_.emplace(off + size, rest);
  live_.emplace(off, Live{size, use});
  used_ += size;
  return reinterpret_cast<void*>(base_ + off);
}

Status DevicePool::free(void* p) {
  if (p == nullptr) return {};
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = a >= base_ ? live_.find(static_cast<size_t>(a - base_)) : live_.end();
  if (it == live_.end())
    return make_error(SPECD_E_INVALID_ARG, "device pool: %p is not a live block (double free or foreign pointer)", p);
  size_t off = it->first, size = it->second.bytes;
  ledger_.release(it->second.use, size);
  used_ -= size;
  live_.erase(it);
  // Merge with the free range after, then the one before, so free memory stays as few ranges as possible.
  auto next = free_.lower_bound(off);
  if (next != free_.end() && next->first == off + size) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      prev->second += size;
      return {};
    }
  }
  free_.emplace(off, size);
  return {};
}

bool DevicePool::lookup(const void* p, MemUse* use, size_t* bytes) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a < base_) return false;
  auto it = live_.find(static_cast<size_t>(a - base_));
  if (it == live_.end()) return false;
  if (use) *use = it->second.use;
  if (bytes) *bytes = it->second.bytes;
  return true;
}

bool DevicePool::contains(const void* p, size_t bytes) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return a >= base_ && a - base_ <= capacity_ && bytes <= capacity_ - (a - base_);
}

DevicePoolStats DevicePool::stats() const {
  DevicePoolStats s;
  s.capacity = capacity_;
  s.used = used_;
  s.free = capacity_ - used_;
  s.free_blocks = free_.size();
  s.live_blocks = live_.size();
  for (const auto& f : free_) s.largest_free = std::max(s.largest_free, f.second);
  s.fragmentation = s.free > 0 ? 1.0 - static_cast<double>(s.largest_free) / static_cast<double>(s.free) : 0.0;
  return s;
}

}  // namespace specd::kernels
