// Row-wise log-softmax and top-k for the plugin ABI's tensor ops (daemon/host_tensor_ops.cpp's numerics).
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/launch.h"

#include <math_constants.h>

namespace specd::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// The max is exact in any order; the sum of exponentials is in double, as on the host, and in a fixed tree.
__global__ void log_softmax_kernel(float* x, int32_t cols) {
  float* v = x + static_cast<int64_t>(blockIdx.x) * cols;
  float mx = -CUDART_INF_F;
  for (int32_t i = threadIdx.x; i < cols; i += blockDim.x) mx = fmaxf(mx, v[i]);
  mx = block_reduce<float, true>(mx);
  double sum = 0.0;
  for (int32_t i = threadIdx.x; i < cols; i += blockDim.x) sum += exp(static_cast<double>(v[i] - mx));
  sum = block_reduce<double, false>(sum);
  const float lse = mx + static_cast<float>(log(sum));
  for (int32_t i = threadIdx.x; i < cols; i += blockDim.x) v[i] -= lse;
}

// (value, index) ordered by value descending, then index ascending: a ranks before b.
__device__ inline bool ranks_before(float av, int32_t ai, float bv, int32_t bi) {
  return av > bv || (av == bv && ai < bi);
}

// k rounds of a block-wide arg-max over the elements ranked after the previous pick: exact, ties to
// the lowest index as the host's insertion does, O(k · cols) (k is a beam width, small).
__global__ void topk_kernel(const float* x, int32_t cols, int32_t k, int32_t* ids, float* vals) {
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  const float* v = x + static_cast<int64_t>(blockIdx.x) * cols;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float pv = CUDART_INF_F;
  int32_t pi = -1;  // the previous pick; everything ranks after (+inf, -1)
  for (int32_t r = 0; r < k; ++r) {
    float bv = -CUDART_INF_F;
    int32_t bi = -1;
    for (int32_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const float e = v[i];
      if (ranks_before(pv, pi, e, i) && (bi < 0 || ranks_before(e, i, bv, bi))) bv = e, bi = i;
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (oi >= 0 && (bi < 0 || ranks_before(ov, oi, bv, bi))) bv = ov, bi = oi;
    }
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < warps; ++w)
        if (si[w] >= 0 && (bi < 0 || ranks_before(sv[w], si[w], bv, bi))) bv = sv[w], bi = si[w];
      sv[0] = bv, si[0] = bi;
      ids[static_cast<int64_t>(blockIdx.x) * k + r] = bi;
      vals[static_cast<int64_t>(blockIdx.x) * k + r] = bi >= 0 ? v[bi] : -CUDART_INF_F;
    }
    __syncthreads();
    pv = sv[0], pi = si[0];
    __syncthreads();  // sv/si are rewritten next round
  }
}

}  // namespace

void launch_log_softmax(cudaStream_t s, float* x, int64_t rows, int32_t cols) {
  if (rows > 0 && cols > 0) log_softmax_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, cols);
}

void launch_topk(cudaStream_t s, const float* x, int64_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) {
  if (rows > 0 && k > 0) topk_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, cols, k, ids, vals);
}

}  // namespace specd::kernels::cuda
