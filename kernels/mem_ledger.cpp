// MemLedger and the names of the memory uses.
#include "kernels/mem_ledger.h"

#include <algorithm>

namespace specd::kernels {

const char* mem_use_name(MemUse use) {
  switch (use) {
    case MemUse::Weights: return "weights";
    case MemUse::Kv: return "kv";
    case MemUse::Scratch: return "scratch";
    case MemUse::Staging: return "staging";
    case MemUse::Plugin: return "plugin";
  }
  return "unknown";
}

Status MemLedger::charge(MemUse use, size_t bytes) {
  MemStats& s = at(use);
  if (s.budget != 0 && (bytes > s.budget || s.used > s.budget - bytes))
    return make_error(SPECD_E_NOMEM, "%s budget of %zu bytes exceeded: %zu in use, %zu more asked", mem_use_name(use),
                      s.budget, s.used, bytes);
  s.used += bytes;
  s.peak = std::max(s.peak, s.used);
  return {};
}

void MemLedger::release(MemUse use, size_t bytes) {
  MemStats& s = at(use);
  s.used -= std::min(bytes, s.used);
}

size_t MemLedger::total_used() const {
  size_t t = 0;
  for (const MemStats& s : s_) t += s.used;
  return t;
}

}  // namespace specd::kernels
