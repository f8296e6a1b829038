// PinnedArena: cudaHostAlloc'ed chunks, bump-allocated between syncs; see pinned_arena.h.
#include "kernels/cuda/pinned_arena.h"

#include <cuda_runtime_api.h>

#include <algorithm>

namespace specd::kernels::cuda {

PinnedArena::~PinnedArena() {
  for (const Chunk& c : chunks_) {
    cudaFreeHost(c.p);
    ledger_.release(MemUse::Staging, c.size);
  }
}

Result<void*> PinnedArena::take(size_t bytes) {
  bytes = (bytes + 63) & ~size_t{63};
  for (; chunk_ < chunks_.size(); ++chunk_, off_ = 0)
    if (chunks_[chunk_].size - off_ >= bytes) {
      void* p = chunks_[chunk_].p + off_;
      off_ += bytes;
      return p;
    }
  // None left fits: a new chunk at least twice the last, so growth stops after a few steps.
  const size_t size = std::max({bytes, size_t{1} << 20, chunks_.empty() ? size_t{0} : 2 * chunks_.back().size});
  SPECD_TRY(ledger_.charge(MemUse::Staging, size));
  void* p = nullptr;
  if (const cudaError_t e = cudaHostAlloc(&p, size, cudaHostAllocDefault); e != cudaSuccess) {
    ledger_.release(MemUse::Staging, size);
    cudaGetLastError();  // not sticky: clear it so the next call does not see it
    return make_error(SPECD_E_NOMEM, "cudaHostAlloc of %zu bytes of staging: %s", size, cudaGetErrorString(e));
  }
  chunks_.push_back({static_cast<char*>(p), size});
  chunk_ = chunks_.size() - 1;
  off_ = bytes;
  return p;
}

void PinnedArena::reset() { chunk_ = off_ = 0; }

}  // namespace specd::kernels::cuda
