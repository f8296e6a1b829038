// The CUDA backend: kernels/backend.h on one NVIDIA GPU. Needs no CUDA headers to include, so the
// engine and daemon call it behind `#if SPECD_HAVE_CUDA` (kernels/build_config.h) and link
// cuda_backend_dep (kernels/cuda/meson.build).
//
// Memory: one cudaMalloc of pool_bytes at creation, sub-allocated by DevicePool (first fit, 256-byte
// alignment), so nothing on the decode path calls the CUDA allocator; every block is charged to the
// backend's MemLedger. Host staging (copies back, host-array arguments, StepMeta) is pinned memory,
// grow-only, charged as MemUse::Staging. All work runs in order on one stream. A backend belongs to
// one thread at a time (it makes its device current on each call, so several may share a thread).
// Its internal per-op scratch (converted activations, uploaded host arrays, the StepMeta copy) is
// charged as MemUse::Scratch too. copy_to_device's source may be reused when the call returns.
// Errors: an op that cannot run (bad argument, CUDA launch or library failure, no staging memory)
// records its error and the next sync() returns it (the first one since the last sync). A sticky
// CUDA error (illegal address, launch failure, ...) loses the device context: every later sync()
// returns it, says so, and ops become no-ops; the backend must be destroyed and recreated.
//
// gemm and batch invariance: cuBLASLt with the weight in its stored type (F32; BF16 and F16 as
// stored, the f32 activations rounded to the weight's type; Q8_0 is dequantised to BF16 once, at
// upload_weight) and f32 accumulation (CUBLAS_COMPUTE_32F: no TF32). One algorithm is fixed per weight
// shape (type, N, K, row stride) the first time the shape is seen, chosen by the heuristic for a
// fixed m (kLtAlgoM in gemm_lt.h) among algorithms without split-K (reduction scheme NONE, split 1),
// and then used for every m: each output element is reduced over K by one tile in one order, so a
// row's result does not depend on m or the other rows. attention walks each (row, head)'s positions
// one by one in sequence order (committed blocks, then visible call rows) with an online softmax, so
// its bits do not depend on the row count, nor on whether a position is committed or in the call.
#pragma once

#include "kernels/backend.h"
#include "kernels/result.h"

#include <cstddef>
#include <memory>

namespace specd::kernels {

// How many CUDA devices this process can use: 0, not an error, when there is no driver, no GPU or
// the runtime refuses (the reason is not kept; cuda_device_count() is a probe).
int cuda_device_count();

// A backend on device (0 ≤ device < cuda_device_count()) owning a pool of pool_bytes device memory.
// Errors: SPECD_E_INVALID_ARG for a bad device number or pool_bytes 0; SPECD_E_NOMEM when the pool
// or the pinned staging cannot be had; SPECD_E_DEVICE with the CUDA or cuBLASLt message otherwise.
Result<std::unique_ptr<Backend>> make_cuda_backend(int device, size_t pool_bytes);

}  // namespace specd::kernels
