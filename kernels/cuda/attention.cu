// Attention over the paged KV cache plus the call's rows, and the commit of rows' K/V into slots.
//
// One warp per (row, head); lane l holds head dims l, l+32, ... (NPL per lane). Positions are taken
// one at a time in sequence order — the row's committed positions through its block table, then the
// call rows its tile row sees, in call order — with an online softmax (running max, rescaled sum and
// accumulator). Every step is the same function of (q, k, v) whether the position is committed or in
// the call, and nothing depends on how many rows the call has, so a row's output has the same bits
// at m = 1 after its predecessors were committed as at m = k with them in the call.
// Not yet fast: positions are not split across warps (a fixed split by absolute position would keep
// the invariance); this kernel is the correct, simple reference the faster one will be checked against.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/launch.h"

#include <math_constants.h>

namespace specd::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

// KvLayout::offset on the device (the header's is host-only): same formula, kept in step with it.
__device__ inline size_t kv_offset(const KvLayout& l, int32_t block, int32_t layer, int32_t kv, int32_t within) {
  const size_t plane = static_cast<size_t>(layer) * 2 + static_cast<size_t>(kv);
  const size_t block_floats = static_cast<size_t>(l.n_layers) * 2 * static_cast<size_t>(l.block_tokens) *
                              static_cast<size_t>(l.kv_dim);
  return static_cast<size_t>(block) * block_floats +
         (plane * static_cast<size_t>(l.block_tokens) + static_cast<size_t>(within)) * static_cast<size_t>(l.kv_dim);
}

struct AttnParams {
  int32_t layer, n_heads, n_kv_heads, head_dim;
  const float* q;
  const float* k;
  const float* v;
  float* out;
  const float* kv;
  KvLayout layout;
  float scale;
};

template <int NPL>
__global__ void attention_kernel(AttnParams a, DeviceStep st) {
  const int lane = threadIdx.x & 31;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (w >= static_cast<int64_t>(st.n_rows) * a.n_heads) return;  // whole warps leave together
  const int32_t row = static_cast<int32_t>(w / a.n_heads), head = static_cast<int32_t>(w % a.n_heads);
  const int32_t hd = a.head_dim;
  const int32_t kvh = head / (a.n_heads / a.n_kv_heads);
  const int64_t kv_dim = static_cast<int64_t>(a.n_kv_heads) * hd;
  const int64_t q_dim = static_cast<int64_t>(a.n_heads) * hd;
  const SeqTile t = st.tiles[st.row_tile[row]];
  const int32_t local = st.row_local[row];

  float q[NPL], acc[NPL];
  const float* qr = a.q + row * q_dim + static_cast<int64_t>(head) * hd;
#pragma unroll
  for (int j = 0; j < NPL; ++j) {
    const int d = lane + 32 * j;
    q[j] = d < hd ? qr[d] : 0.0f;
    acc[j] = 0.0f;
  }
  float mx = -CUDART_INF_F, sum = 0.0f;
  // One position: the same arithmetic wherever k and v come from.
  auto step = [&](const float* k, const float* v) {
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < NPL; ++j) {
      const int d = lane + 32 * j;
      if (d < hd) s += q[j] * k[d];
    }
    s = warp_sum(s) * a.scale;
    const float m2 = fmaxf(mx, s);
    const float corr = expf(mx - m2), p = expf(s - m2);
    sum = sum * corr + p;
#pragma unroll
    for (int j = 0; j < NPL; ++j) {
      const int d = lane + 32 * j;
      if (d < hd) acc[j] = acc[j] * corr + p * v[d];
    }
    mx = m2;
  };

  const int32_t bt = a.layout.block_tokens;
  for (int32_t p = 0; p < t.kv_len; ++p) {
    const int32_t block = st.block_ids[t.first_block + p / bt];
    const float* kp = a.kv + kv_offset(a.layout, block, a.layer, 0, p % bt) + static_cast<int64_t>(kvh) * hd;
    const float* vp = a.kv + kv_offset(a.layout, block, a.layer, 1, p % bt) + static_cast<int64_t>(kvh) * hd;
    step(kp, vp);
  }
  const uint64_t* bits = st.tile_bits + t.bits + static_cast<int64_t>(local) * t.words;
  for (int32_t j = 0; j < t.n_rows; ++j) {
    if (!((bits[j >> 6] >> (j & 63)) & 1u)) continue;
    const int64_t r = st.row_ids[t.first + j];
    step(a.k + r * kv_dim + static_cast<int64_t>(kvh) * hd, a.v + r * kv_dim + static_cast<int64_t>(kvh) * hd);
  }
  float* o = a.out + row * q_dim + static_cast<int64_t>(head) * hd;
  const float inv = 1.0f / sum;
#pragma unroll
  for (int j = 0; j < NPL; ++j) {
    const int d = lane + 32 * j;
    if (d < hd) o[d] = acc[j] * inv;
  }
}

// blockIdx.x: committed position i < n; blockIdx.y: plane (layer · 2 + K/V); threads over kv_dim.
__global__ void kv_commit_kernel(const float* k, const float* v, int64_t row_stride, const int32_t* rows,
                                 const int32_t* slots, float* kv, KvLayout layout) {
  const int32_t i = blockIdx.x, layer = blockIdx.y / 2, which = blockIdx.y % 2;
  const int32_t slot = slots[i];
  const float* src = (which == 0 ? k : v) + (layer * row_stride + rows[i]) * layout.kv_dim;
  float* dst = kv + kv_offset(layout, slot / layout.block_tokens, layer, which, slot % layout.block_tokens);
  for (int32_t d = threadIdx.x; d < layout.kv_dim; d += blockDim.x) dst[d] = src[d];
}

}  // namespace

void launch_attention(cudaStream_t s, const AttentionArgs& a, const DeviceStep& step) {
  const int64_t warps = static_cast<int64_t>(step.n_rows) * a.n_heads;
  if (warps <= 0) return;
  const AttnParams p{a.layer, a.n_heads, a.n_kv_heads, a.head_dim, a.q, a.k, a.v, a.out, a.kv, a.layout,
                     1.0f / sqrtf(static_cast<float>(a.head_dim))};
  const unsigned blocks = static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const unsigned threads = 32 * kWarpsPerBlock;
  // Dims per lane rounded up to a power of two; the caller has checked head_dim ≤ 512.
  if (a.head_dim <= 32) attention_kernel<1><<<blocks, threads, 0, s>>>(p, step);
  else if (a.head_dim <= 64) attention_kernel<2><<<blocks, threads, 0, s>>>(p, step);
  else if (a.head_dim <= 128) attention_kernel<4><<<blocks, threads, 0, s>>>(p, step);
  else if (a.head_dim <= 256) attention_kernel<8><<<blocks, threads, 0, s>>>(p, step);
  else attention_kernel<16><<<blocks, threads, 0, s>>>(p, step);
}

void launch_kv_commit(cudaStream_t s, const KvCommitArgs& a) {
  if (a.n <= 0 || a.layout.n_layers <= 0) return;
  const dim3 grid(static_cast<unsigned>(a.n), static_cast<unsigned>(a.layout.n_layers) * 2);
  kv_commit_kernel<<<grid, 128, 0, s>>>(a.k, a.v, a.row_stride, a.rows, a.slots, a.kv, a.layout);
}

}  // namespace specd::kernels::cuda
