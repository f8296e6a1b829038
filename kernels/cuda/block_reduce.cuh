// Block-wide reductions in a fixed order (lane butterflies, then warp 0 over the warps' results), so
// a row's reduction gives the same bits on every run and for any number of rows in the call.
#pragma once

#include <cuda_runtime.h>

namespace specd::kernels::cuda {

template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum (or max when IsMax) of every thread's v, returned to all threads. blockDim.x: a multiple of 32,
// at most 1024. Uses 32 Ts of shared memory and synchronises the block twice.
template <class T, bool IsMax>
__device__ inline T block_reduce(T v) {
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = IsMax ? warp_max(v) : warp_sum(v);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? part[lane] : part[0];  // part[0] is neutral for max; zeroed below for sums
    if (!IsMax && lane >= warps) w = T(0);
    w = IsMax ? warp_max(w) : warp_sum(w);
    if (lane == 0) part[0] = w;
  }
  __syncthreads();
  const T r = part[0];
  __syncthreads();  // part may be reused by the caller's next reduction
  return r;
}

}  // namespace specd::kernels::cuda
