// Row and element-wise kernels: RMSNorm, RoPE, SwiGLU, SiLU, adds, embedding gathers, conversions.
// Numerics follow engine/row_ops.cpp; reductions are in a fixed order per row (block_reduce.cuh).
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/launch.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace specd::kernels::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__device__ inline float bf16_bits_to_f32(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }
__device__ inline float f16_bits_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }

__global__ void rms_norm_kernel(const float* x, const float* gain, int32_t n, float eps, float* out) {
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * n;
  float* o = out + static_cast<int64_t>(blockIdx.x) * n;
  float ss = 0.0f;
  for (int32_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_reduce<float, false>(ss);
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  for (int32_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * gain[i];
}

// One thread per (row, head, pair). Frequencies and angles as engine/row_ops.cpp's Rope: inv_freq in
// double rounded to float, the angle pos·inv_freq in double, cos and sin rounded to float.
__global__ void rope_kernel(float* x, int64_t ld, int32_t n_rows, int32_t n_heads, const int32_t* pos,
                            RopeParams p) {
  const int32_t half = p.rope_dims / 2;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(n_rows) * n_heads * half) return;
  const int32_t i = static_cast<int32_t>(t % half);
  const int32_t h = static_cast<int32_t>((t / half) % n_heads);
  const int32_t r = static_cast<int32_t>(t / (static_cast<int64_t>(half) * n_heads));
  double f = p.freq_scale * pow(static_cast<double>(p.theta), -2.0 * i / static_cast<double>(p.rope_dims));
  if (p.freq_factors) f /= static_cast<double>(p.freq_factors[i]);
  const float inv_freq = static_cast<float>(f);
  const double a = static_cast<double>(pos[r]) * static_cast<double>(inv_freq);
  const float cs = static_cast<float>(cos(a)), sn = static_cast<float>(sin(a));
  float* v = x + r * ld + static_cast<int64_t>(h) * p.head_dim;
  const int32_t ia = p.layout == RopeLayout::Adjacent ? 2 * i : i;
  const int32_t ib = p.layout == RopeLayout::Adjacent ? 2 * i + 1 : i + half;
  const float x0 = v[ia], x1 = v[ib];
  v[ia] = x0 * cs - x1 * sn;
  v[ib] = x0 * sn + x1 * cs;
}

// x[r][i] += bias[i]: one thread per element of rows × n.
__global__ void add_bias_kernel(float* x, const float* bias, int64_t rows, int32_t n) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < rows * n) x[t] += bias[t % n];
}

__global__ void swiglu_kernel(float* gate, const float* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void silu_kernel(float* x, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] / (1.0f + expf(-x[i]));
}

__global__ void add3_kernel(const float* a, const float* b, float* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a[i] + b[i];
}

__device__ inline float weight_at(GgmlType type, const unsigned char* row, int64_t c) {
  switch (type) {
    case GgmlType::F32: return reinterpret_cast<const float*>(row)[c];
    case GgmlType::F16: return f16_bits_to_f32(reinterpret_cast<const uint16_t*>(row)[c]);
    case GgmlType::BF16: return bf16_bits_to_f32(reinterpret_cast<const uint16_t*>(row)[c]);
    case GgmlType::Q8_0: {
      const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + c / 32;
      // Byte loads: a 34-byte block leaves d unaligned for a 16-bit load.
      const uint16_t d = static_cast<uint16_t>(reinterpret_cast<const unsigned char*>(&b->d)[0] |
                                               (reinterpret_cast<const unsigned char*>(&b->d)[1] << 8));
      return f16_bits_to_f32(d) * static_cast<float>(b->qs[c % 32]);
    }
  }
  return 0.0f;
}

__global__ void embed_kernel(GgmlType type, const unsigned char* table, size_t row_bytes, int64_t cols,
                             const int32_t* ids, float* out) {
  const unsigned char* row = table + static_cast<size_t>(ids[blockIdx.x]) * row_bytes;
  float* o = out + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = weight_at(type, row, c);
}

__global__ void f32_to_half_kernel(const float* x, int64_t ldx, int64_t m, int64_t k, bool bf16, uint16_t* out) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= m * k) return;
  const float v = x[(t / k) * ldx + t % k];
  out[t] = bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
}

__global__ void q8_0_to_bf16_kernel(const unsigned char* q, int64_t rows, int64_t cols, size_t row_bytes, uint16_t* out) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= rows * cols) return;
  const float v = weight_at(GgmlType::Q8_0, q + static_cast<size_t>(t / cols) * row_bytes, t % cols);
  out[t] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

}  // namespace

void launch_rms_norm(cudaStream_t s, const float* x, const float* gain, int64_t rows, int32_t n, float eps, float* out) {
  if (rows > 0) rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, gain, n, eps, out);
}

void launch_rope(cudaStream_t s, float* x, int64_t ld, int32_t n_rows, int32_t n_heads, const int32_t* pos,
                 const RopeParams& p) {
  const int64_t n = static_cast<int64_t>(n_rows) * n_heads * (p.rope_dims / 2);
  if (n > 0) rope_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, ld, n_rows, n_heads, pos, p);
}

void launch_add_bias(cudaStream_t s, float* x, const float* bias, int64_t rows, int32_t n) {
  if (rows > 0 && n > 0) add_bias_kernel<<<blocks_for(rows * n), kThreads, 0, s>>>(x, bias, rows, n);
}

void launch_swiglu(cudaStream_t s, float* gate, const float* up, int64_t n) {
  if (n > 0) swiglu_kernel<<<blocks_for(n), kThreads, 0, s>>>(gate, up, n);
}

void launch_silu(cudaStream_t s, float* x, int64_t n) {
  if (n > 0) silu_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, n);
}

void launch_add3(cudaStream_t s, const float* a, const float* b, float* y, int64_t n) {
  if (n > 0) add3_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, y, n);
}

void launch_embed(cudaStream_t s, const WeightView& table, const int32_t* ids, int64_t n, float* out) {
  if (n > 0)
    embed_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(
        table.type, static_cast<const unsigned char*>(table.data), table.row_bytes, table.cols, ids, out);
}

void launch_f32_to_half(cudaStream_t s, const float* x, int64_t ldx, int64_t m, int64_t k, GgmlType type, void* out) {
  if (m * k > 0)
    f32_to_half_kernel<<<blocks_for(m * k), kThreads, 0, s>>>(x, ldx, m, k, type == GgmlType::BF16,
                                                               static_cast<uint16_t*>(out));
}

void launch_q8_0_to_bf16(cudaStream_t s, const void* q, int64_t rows, int64_t cols, size_t row_bytes, void* out) {
  if (rows * cols > 0)
    q8_0_to_bf16_kernel<<<blocks_for(rows * cols), kThreads, 0, s>>>(static_cast<const unsigned char*>(q), rows, cols,
                                                                      row_bytes, static_cast<uint16_t*>(out));
}

}  // namespace specd::kernels::cuda
