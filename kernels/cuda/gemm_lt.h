// LtGemm: y = x · wᵀ through cuBLASLt with one fixed algorithm per weight shape (batch invariance).
//
// Internal to kernels/cuda/. Why a fixed algorithm: cuBLASLt's heuristic picks different kernels
// (tile shapes, split-K) for different m, and a split or tile change reorders a row's sum over K, so
// the same row would get other bits at m = 1 than at m = k. We ask the heuristic once per shape, at
// m = kLtAlgoM, for algorithms without split-K, pin split 1 and no reduction scheme, and run that
// algorithm for every m. Alignment preferences are the weakest any call may pass (4-byte activations
// and outputs), so the pinned algorithm stays valid for every pointer and stride.
#pragma once

#include "kernels/ggml_type.h"
#include "kernels/result.h"
#include "kernels/weight_view.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

namespace specd::kernels::cuda {

inline constexpr int64_t kLtAlgoM = 64;  // the m an algorithm is chosen for (a verification-sized batch)

class LtGemm {
 public:
  LtGemm() = default;
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;
  ~LtGemm();
  // Create the cuBLASLt handle. Errors: SPECD_E_DEVICE with cuBLASLt's status name.
  Status init();
  // Enqueue y[i][n] = Σ_k x[i][k] · w[n][k] on stream. w: F32, BF16 or F16 device weights; x: m rows
  // in w's type (f32 for F32 weights) with row stride ldx elements; y: f32 with row stride ldy.
  // Errors: SPECD_E_UNSUPPORTED for another weight type; SPECD_E_DEVICE when cuBLASLt refuses
  // (message names the call and shape).
  Status run(const WeightView& w, const void* x, int64_t ldx, int64_t m, float* y, int64_t ldy, cudaStream_t stream);

 private:
  using Key = std::tuple<GgmlType, int64_t, int64_t, int64_t>;  // type, N, K, weight row stride
  Result<cublasLtMatmulAlgo_t> algo_for(const WeightView& w, int64_t lda);
  cublasLtHandle_t handle_ = nullptr;
  std::map<Key, cublasLtMatmulAlgo_t> algos_;  // grows once per weight shape, then steady
};

}  // namespace specd::kernels::cuda
