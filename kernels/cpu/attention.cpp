// attend_group: softmax(q·Kᵀ/√d) V over committed positions (block by block through the block
// table) and the in-call rows the sequence's tile lets the row see, in call order.
//
// Head dims are small (8 for stories260K and its inflations), so the per-position work is a few
// instructions: everything here is inlined and specialised on the head dim, and exp is a
// polynomial the compiler vectorises (a libm call per score cost more than the dot products).
#include "kernels/cpu/attention.h"

#include <algorithm>

#include <cmath>
#include <cstring>
#include <limits>

namespace specd::kernels {
namespace {

// e^x for x ≤ 0 (scores minus their max), relative error < 2e-7; 0 below -87.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  // Round to nearest by the 1.5·2^23 trick: no libm call, vectorises on any x86-64.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &p, 4);
  bits += static_cast<int32_t>(n) << 23;
  std::memcpy(&p, &bits, 4);
  return p;
}

// HD > 0: head dim known at compile time; HD == 0: runtime hd.
template <int HD>
struct HeadDim {
  static constexpr int32_t get(int32_t) { return HD; }
};
template <>
struct HeadDim<0> {
  static int32_t get(int32_t hd) { return hd; }
};

template <int HD>
[[gnu::always_inline]] inline void attend_group_impl(const AttentionArgs& a, const StepMeta& m, int32_t row, int32_t kvh,
                                                     float* scores) {
  const int32_t hd = HeadDim<HD>::get(a.head_dim);
  const int32_t group = a.n_heads / a.n_kv_heads;
  const int64_t kv_dim = static_cast<int64_t>(a.n_kv_heads) * hd;
  const int64_t q_dim = static_cast<int64_t>(a.n_heads) * hd;
  const SeqTile& t = m.tiles[static_cast<size_t>(m.row_tile[static_cast<size_t>(row)])];
  const int32_t local = m.row_local[static_cast<size_t>(row)];
  const int32_t committed = t.kv_len;
  const int32_t bt = a.layout.block_tokens;
  const int32_t* blocks = m.block_ids.data() + t.first_block;
  const int32_t* rows = m.row_ids.data() + t.first;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (int32_t g = 0; g < group; ++g) {
    const int32_t head = kvh * group + g;
    const float* q = a.q + static_cast<int64_t>(row) * q_dim + static_cast<int64_t>(head) * hd;
    float* out = a.out + static_cast<int64_t>(row) * q_dim + static_cast<int64_t>(head) * hd;
    auto score = [&](const float* k) {
      float s = 0.0f;
      for (int32_t d = 0; d < hd; ++d) s += q[d] * k[d];
      return s * scale;
    };
    int32_t n = 0;
    for (int32_t b = 0, p0 = 0; p0 < committed; ++b, p0 += bt) {
      const float* kb = a.kv + a.layout.offset(blocks[b], a.layer, 0, 0) + static_cast<int64_t>(kvh) * hd;
      const int32_t len = std::min(bt, committed - p0);
      for (int32_t j = 0; j < len; ++j) scores[n++] = score(kb + j * kv_dim);
    }
    for (int32_t j = 0; j < t.n_rows; ++j)
      if (m.sees(t, local, j)) scores[n++] = score(a.k + rows[j] * kv_dim + static_cast<int64_t>(kvh) * hd);
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; ++i) mx = std::max(mx, scores[i]);
    float sum = 0.0f;
    for (int32_t i = 0; i < n; ++i) sum += scores[i] = exp_nonpositive(scores[i] - mx);
    const float inv = 1.0f / sum;

    float acc[HD > 0 ? HD : 512] = {};
    int32_t at = 0;
    for (int32_t b = 0, p0 = 0; p0 < committed; ++b, p0 += bt) {
      const float* vb = a.kv + a.layout.offset(blocks[b], a.layer, 1, 0) + static_cast<int64_t>(kvh) * hd;
      const int32_t len = std::min(bt, committed - p0);
      for (int32_t j = 0; j < len; ++j, ++at)
        for (int32_t d = 0; d < hd; ++d) acc[d] += scores[at] * vb[j * kv_dim + d];
    }
    for (int32_t j = 0; j < t.n_rows; ++j) {
      if (!m.sees(t, local, j)) continue;
      const float* v = a.v + rows[j] * kv_dim + static_cast<int64_t>(kvh) * hd;
      for (int32_t d = 0; d < hd; ++d) acc[d] += scores[at] * v[d];
      ++at;
    }
    for (int32_t d = 0; d < hd; ++d) out[d] = acc[d] * inv;
  }
}

}  // namespace

// One clone per ISA; the specialisations above are inlined into each.
__attribute__((target_clones("avx512f", "avx2", "default"))) void attend_group(const AttentionArgs& a, const StepMeta& m,
                                                                              int32_t row, int32_t kv_head,
                                                                              float* scratch) {
  switch (a.head_dim) {
    case 8: return attend_group_impl<8>(a, m, row, kv_head, scratch);
    case 16: return attend_group_impl<16>(a, m, row, kv_head, scratch);
    case 32: return attend_group_impl<32>(a, m, row, kv_head, scratch);
    case 64: return attend_group_impl<64>(a, m, row, kv_head, scratch);
    case 128: return attend_group_impl<128>(a, m, row, kv_head, scratch);
    default: return attend_group_impl<0>(a, m, row, kv_head, scratch);
  }
}

}  // namespace specd::kernels
