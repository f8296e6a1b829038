// DevicePool: one contiguous device region, sub-allocated by offset, charged per use to a MemLedger.
//
// A device backend makes one cudaMalloc at creation and carves every later allocation out of it here,
// so nothing on the decode path calls the driver's allocator (which synchronises the device) and a
// budget per MemUse is a named SPECD_E_NOMEM at the call, never an out-of-memory error later. Host-only
// C++: the region is an address range it never dereferences, so it is unit-tested without a GPU.
// Policy: first fit by offset, every block a multiple of kAlign bytes (so every pointer handed out is
// kAlign-aligned), free blocks merged with their neighbours when given back. Not thread-safe: it
// belongs to its backend, whose ops all come from one thread.
#pragma once

#include "kernels/mem_ledger.h"
#include "kernels/mem_use.h"
#include "kernels/result.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>

namespace specd::kernels {

struct DevicePoolStats {
  size_t capacity = 0;       // bytes the pool manages (after aligning the base)
  size_t used = 0;           // bytes in live blocks (rounded sizes)
  size_t free = 0;           // capacity - used
  size_t largest_free = 0;   // the biggest single allocation that can succeed now
  size_t free_blocks = 0;    // separate free ranges
  size_t live_blocks = 0;    // allocations not yet given back
  // 1 - largest_free / free: 0 when all free memory is one range (or none is free), towards 1 as
  // free memory splinters into pieces too small for a large request.
  double fragmentation = 0.0;
};

class DevicePool {
 public:
  static constexpr size_t kAlign = 256;  // cudaMalloc's own alignment; also what cuBLASLt wants

  // Manage [base, base + bytes) rounded inwards to kAlign; charges go to ledger, which must outlive
  // the pool. base is never dereferenced (it may be a device address).
  DevicePool(void* base, size_t bytes, MemLedger& ledger);
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // A kAlign-aligned block of at least bytes (0 counts as 1) for use; its rounded size is charged to
  // use in the ledger. Errors: SPECD_E_NOMEM past use's budget (the ledger's message names the use)
  // or when no free range is big enough (the message gives the largest free range).
  Result<void*> alloc(MemUse use, size_t bytes);
  // Give back p from alloc and release its charge. Errors: SPECD_E_INVALID_ARG when p is not a live
  // block of this pool (a double free or a foreign pointer); nothing changes then. nullptr is a no-op.
  Status free(void* p);
  // The use and rounded size of live block p; false if p is not one.
  bool lookup(const void* p, MemUse* use, size_t* bytes) const;
  DevicePoolStats stats() const;
  // Whether [p, p + bytes) lies inside the managed region (for cheap argument checks).
  bool contains(const void* p, size_t bytes) const;

 private:
  struct Live {
    size_t bytes;
    MemUse use;
  };
  uintptr_t base_ = 0;
  size_t capacity_ = 0;
  size_t used_ = 0;
  MemLedger& ledger_;
  std::map<size_t, size_t> free_;            // offset → size, ordered so neighbours can be merged
  std::unordered_map<size_t, Live> live_;    // offset → block
};

}  // namespace specd::kernels
