// Launchers of the CUDA backend's kernels (defined in the .cu files), for cuda_backend.cpp.
// Each enqueues on stream and returns; launch errors are read by the caller with cudaGetLastError.
// All pointers are device memory. Internal to kernels/cuda/ (it needs the CUDA runtime headers).
#pragma once

#include "kernels/backend.h"
#include "kernels/ggml_type.h"
#include "kernels/step_meta.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace specd::kernels::cuda {

// The device copy of a StepMeta (begin_step): pointers into one upload.
struct DeviceStep {
  int32_t n_rows = 0;
  const int32_t* pos = nullptr;
  const int32_t* row_tile = nullptr;
  const int32_t* row_local = nullptr;
  const SeqTile* tiles = nullptr;
  const int32_t* row_ids = nullptr;
  const int32_t* block_ids = nullptr;
  const uint64_t* tile_bits = nullptr;
};

// rows.cu: row and element-wise ops.
void launch_rms_norm(cudaStream_t s, const float* x, const float* gain, int64_t rows, int32_t n, float eps, float* out);
void launch_rope(cudaStream_t s, float* x, int64_t ld, int32_t n_rows, int32_t n_heads, const int32_t* pos,
                 const RopeParams& p);
void launch_add_bias(cudaStream_t s, float* x, const float* bias, int64_t rows, int32_t n);
void launch_swiglu(cudaStream_t s, float* gate, const float* up, int64_t n);
void launch_silu(cudaStream_t s, float* x, int64_t n);
void launch_add3(cudaStream_t s, const float* a, const float* b, float* y, int64_t n);
// out[i] = row ids[i] of table (F32, F16, BF16 or Q8_0) as f32.
void launch_embed(cudaStream_t s, const WeightView& table, const int32_t* ids, int64_t n, float* out);
// out = x (m rows of k floats, row stride ldx) rounded to type (BF16 or F16), packed [m][k].
void launch_f32_to_half(cudaStream_t s, const float* x, int64_t ldx, int64_t m, int64_t k, GgmlType type, void* out);
// out = Q8_0 rows (row_bytes apart) dequantised to packed BF16 [rows][cols].
void launch_q8_0_to_bf16(cudaStream_t s, const void* q, int64_t rows, int64_t cols, size_t row_bytes, void* out);

// attention.cu. a.q/k/v/out/kv are device memory; rows/slots of kv_commit are device arrays here.
void launch_attention(cudaStream_t s, const AttentionArgs& a, const DeviceStep& step);
void launch_kv_commit(cudaStream_t s, const KvCommitArgs& a);

// softmax_topk.cu.
void launch_log_softmax(cudaStream_t s, float* x, int64_t rows, int32_t cols);
// ids/vals: device arrays [rows][k].
void launch_topk(cudaStream_t s, const float* x, int64_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals);

}  // namespace specd::kernels::cuda
