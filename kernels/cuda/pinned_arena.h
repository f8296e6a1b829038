// PinnedArena: page-locked host memory handed out by bump allocation and taken back all at once.
//
// Internal to kernels/cuda/. Async copies read or write their host side when the stream gets to
// them, so a staging byte can be reused only after the stream has passed that point: the backend
// resets the arena in sync(). Chunks are kept (grow-only), so steady-state steps allocate nothing.
// Every chunk is charged to the ledger as MemUse::Staging.
#pragma once

#include "kernels/mem_ledger.h"
#include "kernels/result.h"

#include <cstddef>
#include <vector>

namespace specd::kernels::cuda {

class PinnedArena {
 public:
  explicit PinnedArena(MemLedger& ledger) : ledger_(ledger) {}
  PinnedArena(const PinnedArena&) = delete;
  PinnedArena& operator=(const PinnedArena&) = delete;
  ~PinnedArena();
  // bytes of pinned memory, 64-byte aligned, valid until reset(). Errors: SPECD_E_NOMEM past the
  // staging budget or when cudaHostAlloc fails.
  Result<void*> take(size_t bytes);
  // Every earlier take() is free again (call only when the stream has drained).
  void reset();

 private:
  struct Chunk {
    char* p;
    size_t size;
  };
  MemLedger& ledger_;
  std::vector<Chunk> chunks_;
  size_t chunk_ = 0, off_ = 0;  // where the next take starts
};

}  // namespace specd::kernels::cuda
