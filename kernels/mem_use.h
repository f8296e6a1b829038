// MemUse: what a block of backend memory is for. Every allocation names one, so budgets and the
// status report can say where the memory went (weights, KV pages, per-step scratch, host staging,
// plugin buffers), as ggml-backend's buffer usages do.
#pragma once

#include <cstddef>
#include <cstdint>

namespace specd::kernels {

enum class MemUse : uint8_t {
  Weights = 0,  // model tensors, written once at load
  Kv = 1,       // the paged KV cache's storage
  Scratch = 2,  // per-step activations; grow-only, reused every step
  Staging = 3,  // host memory the device copies through (pinned on CUDA)
  Plugin = 4,   // buffers decoder plugins create through the host's tensor ops
};
inline constexpr int kMemUseCount = 5;

// "weights", "kv", "scratch", "staging", "plugin".
const char* mem_use_name(MemUse use);

}  // namespace specd::kernels
