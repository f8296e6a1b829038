// MemLedger: bytes in use, high-water mark and budget per MemUse, for one backend.
//
// Backends charge every allocation here before they make it, so a budget (from the config, per
// model) is a clear SPECD_E_NOMEM naming the use, never an out-of-memory crash later.
#pragma once

#include "kernels/mem_use.h"
#include "kernels/result.h"

#include <array>
#include <cstddef>

namespace specd::kernels {

struct MemStats {
  size_t used = 0;    // bytes held now
  size_t peak = 0;    // most bytes ever held at once
  size_t budget = 0;  // most bytes allowed; 0 = no limit of its own
};

class MemLedger {
 public:
  // budget 0 lifts the limit. A budget below what is in use refuses further charges, frees nothing.
  void set_budget(MemUse use, size_t bytes) { at(use).budget = bytes; }
  // Count bytes against use. Errors: SPECD_E_NOMEM ("kv budget of N bytes exceeded: ...") past the budget.
  Status charge(MemUse use, size_t bytes);
  // Return bytes charged earlier (never more than are held).
  void release(MemUse use, size_t bytes);
  const MemStats& stats(MemUse use) const { return s_[static_cast<size_t>(use)]; }
  size_t total_used() const;

 private:
  MemStats& at(MemUse use) { return s_[static_cast<size_t>(use)]; }
  std::array<MemStats, kMemUseCount> s_{};
};

}  // namespace specd::kernels
