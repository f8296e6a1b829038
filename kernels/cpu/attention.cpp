// attend_group: softmax(q·Kᵀ/√d) V over committed positions (block by block through the block
// table) and the in-call rows the sequence's tile lets the row see, in call order.
//
// A score's dot product must be added in element order (it defines the bits), so it cannot be
// vectorised along the head dim; instead the query heads that share a KV head are vector lanes
// (attend_heads, groups of 4 or more: each K and V vector is read once for the group). On the
// 1B-shape model (head dim 8, groups of 8) this took a 16-row verify at depth 256 from 174 to 123 ms
// (AMX machine, 2 threads). Smaller groups go one head at a time. Everything is inlined, specialised
// on the head dim, and exp is a polynomial (a libm call per score cost more than the dot products).
#include "kernels/cpu/attention.h"

#include <algorithm>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace specd::kernels {
namespace {

// NH lanes of floats and of int32 as GCC vectors: written with these, the lane loops below are
// vector code in every target clone, not whatever the vectoriser makes of them. Every function taking or returning these is inlined into attend_group's clones, so the ABI note
// GCC gives for vector arguments outside AVX code (-Wpsabi) concerns no real call.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <int NH> struct Lanes { typedef float F __attribute__((vector_size(4 * NH))); typedef int32_t I __attribute__((vector_size(4 * NH))); };

template <class F> [[gnu::always_inline]] inline F load_lanes(const float* p) { F v; std::memcpy(&v, p, sizeof v); return v; }
template <class F> [[gnu::always_inline]] inline void store_lanes(float* p, F v) { std::memcpy(p, &v, sizeof v); }

// e^x for x ≤ 0 (scores minus their max), relative error < 2e-7; 0 below -87. Lane by lane the same
// operations as on one float, so the same bits whatever the lane count.
template <class F, class I>
[[gnu::always_inline]] inline F exp_nonpositive(F x) {
  x = x < -87.0f ? F{} - 87.0f : x;  // std::max(x, -87.0f)
  // Round to nearest by the 1.5·2^23 trick: no libm call.
  const F n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const F r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  I bits;
  std::memcpy(&bits, &p, sizeof bits);
  if constexpr (std::is_same_v<F, float>) bits += static_cast<int32_t>(n) << 23;
  else bits += __builtin_convertvector(n, I) << 23;
  std::memcpy(&p, &bits, sizeof p);
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

// What one row sees through KV head kvh: its committed positions (block by block) and the in-call
// rows its tile lets it see, in that order.
struct RowView {
  const AttentionArgs& a;
  const StepMeta& m;
  const SeqTile& t;
  int32_t local, kvh, hd;
  int64_t kv_dim, q_dim;
  float scale;

  RowView(const AttentionArgs& args, const StepMeta& meta, int32_t row, int32_t kv_head, int32_t head_dim)
      : a(args), m(meta), t(meta.tiles[static_cast<size_t>(meta.row_tile[static_cast<size_t>(row)])]),
        local(meta.row_local[static_cast<size_t>(row)]), kvh(kv_head), hd(head_dim),
        kv_dim(static_cast<int64_t>(args.n_kv_heads) * head_dim), q_dim(static_cast<int64_t>(args.n_heads) * head_dim),
        scale(1.0f / std::sqrt(static_cast<float>(head_dim))) {}

  // fn(vector) for every key (kind 0) or value (kind 1) the row sees, in order. Everything the loops
  // read is copied to locals first: fn writes floats, which the compiler must otherwise assume may
  // change any float or pointer reachable from here, reloading them every position.
  template <class Fn>
  [[gnu::always_inline]] void each(int32_t kind, Fn&& fn) const {
    const KvLayout layout = a.layout;
    const int32_t bt = layout.block_tokens, kv_len = t.kv_len, n_rows = t.n_rows, layer = a.layer;
    const int64_t stride = kv_dim, head = static_cast<int64_t>(kvh) * hd;
    const float* kv = a.kv;
    const int32_t* blocks = m.block_ids.data() + t.first_block;
    for (int32_t b = 0, p0 = 0; p0 < kv_len; ++b, p0 += bt) {
      const float* base = kv + layout.offset(blocks[b], layer, kind, 0) + head;
      const int32_t len = std::min(bt, kv_len - p0);
      for (int32_t i = 0; i < len; ++i) fn(base + i * stride);
    }
    const int32_t* rows = m.row_ids.data() + t.first;
    const float* in_call = (kind == 0 ? a.k : a.v) + head;
    for (int32_t i = 0; i < n_rows; ++i)
      if (m.sees(t, local, i)) fn(in_call + rows[i] * stride);
  }
};

// One head at a time (groups of fewer than 4 heads, where vectors of 2 lanes measured slower).
template <int HD>
[[gnu::always_inline]] inline void attend_one_by_one(const AttentionArgs& a, const StepMeta& m, int32_t row, int32_t kvh,
                                                     float* scores) {
  const int32_t hd = HeadDim<HD>::get(a.head_dim), group = a.n_heads / a.n_kv_heads;
  const RowView rv(a, m, row, kvh, hd);
  for (int32_t g = 0; g < group; ++g) {
    const int32_t head = kvh * group + g;
    const float* q = a.q + static_cast<int64_t>(row) * rv.q_dim + static_cast<int64_t>(head) * hd;
    float* out = a.out + static_cast<int64_t>(row) * rv.q_dim + static_cast<int64_t>(head) * hd;
    const float scale = rv.scale;
    int32_t n = 0;
    rv.each(0, [&](const float* k) {
      float s = 0.0f;
      for (int32_t d = 0; d < hd; ++d) s += q[d] * k[d];
      scores[n++] = s * scale;
    });
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; ++i) mx = std::max(mx, scores[i]);
    float sum = 0.0f;
    for (int32_t i = 0; i < n; ++i) sum += scores[i] = exp_nonpositive<float, int32_t>(scores[i] - mx);
    const float inv = 1.0f / sum;
    float acc[HD > 0 ? HD : 512] = {};
    int32_t at = 0;
    rv.each(1, [&](const float* v) {
      for (int32_t d = 0; d < hd; ++d) acc[d] += scores[at] * v[d];
      ++at;
    });
    for (int32_t d = 0; d < hd; ++d) out[d] = acc[d] * inv;
  }
}

// The heads [h0, h0 + nh) of KV head kvh's group, nh <= NH, for one row. Lanes are heads (NH of
// them, the ones past nh computing zeros): a head's score is sum_d q[d] k[d] added in d order, its
// softmax runs over positions in order, its output is sum_i p_i v_i in position order, exactly as
// attend_one_by_one computes them (no FMA contraction in this library), so a row's bits do not
// depend on how heads are grouped. scores holds (visible positions) x NH floats, position-major.
template <int HD, int NH>
[[gnu::always_inline]] inline void attend_heads(const AttentionArgs& a, const StepMeta& m, int32_t row, int32_t kvh,
                                                int32_t h0, int32_t nh, float* scores) {
  using F = typename Lanes<NH>::F;
  using I = typename Lanes<NH>::I;
  const int32_t hd = HeadDim<HD>::get(a.head_dim);
  const RowView rv(a, m, row, kvh, hd);
  const float* q = a.q + static_cast<int64_t>(row) * rv.q_dim + static_cast<int64_t>(h0) * hd;
  float* out = a.out + static_cast<int64_t>(row) * rv.q_dim + static_cast<int64_t>(h0) * hd;

  // The heads' queries transposed: qv[d] holds element d of each head's query.
  F qv[HD > 0 ? HD : 512];
  for (int32_t d = 0; d < hd; ++d) {
    alignas(64) float lanes[NH] = {};
    for (int32_t j = 0; j < nh; ++j) lanes[j] = q[j * hd + d];
    qv[d] = load_lanes<F>(lanes);
  }
  const float scale = rv.scale;
  int64_t n = 0;
  rv.each(0, [&](const float* k) {
    F s{};
    for (int32_t d = 0; d < hd; ++d) s += qv[d] * k[d];
    store_lanes(scores + n++ * NH, s * scale);
  });
  F mx = F{} - std::numeric_limits<float>::infinity(), sum{};
  for (int64_t i = 0; i < n; ++i) {
    const F v = load_lanes<F>(scores + i * NH);
    mx = mx < v ? v : mx;  // std::max(mx, v)
  }
  for (int64_t i = 0; i < n; ++i) {
    const F e = exp_nonpositive<F, I>(load_lanes<F>(scores + i * NH) - mx);
    store_lanes(scores + i * NH, e);
    sum += e;
  }
  F acc[HD > 0 ? HD : 512] = {};  // acc[d]: element d of each head's output
  int64_t at = 0;
  rv.each(1, [&](const float* v) {
    const F p = load_lanes<F>(scores + at++ * NH);
    for (int32_t d = 0; d < hd; ++d) acc[d] += p * v[d];
  });
  const F inv = 1.0f / sum;
  for (int32_t d = 0; d < hd; ++d) {
    const F o = acc[d] * inv;
    for (int32_t j = 0; j < nh; ++j) out[j * hd + d] = o[j];
  }
}

// The group in passes of NH heads.
template <int HD, int NH>
[[gnu::always_inline]] inline void attend_passes(const AttentionArgs& a, const StepMeta& m, int32_t row, int32_t kvh,
                                                 int32_t group, float* scores) {
  for (int32_t g = 0; g < group; g += NH) attend_heads<HD, NH>(a, m, row, kvh, kvh * group + g, std::min(NH, group - g), scores);
}

// Lanes: the largest power of two from 4 up to kHeadsPerPass that the group fills, else one head at a time.
template <int HD>
[[gnu::always_inline]] inline void attend_group_impl(const AttentionArgs& a, const StepMeta& m, int32_t row, int32_t kvh,
                                                     float* scores) {
  const int32_t group = a.n_heads / a.n_kv_heads;
  static_assert(kHeadsPerPass == 16);
  if (group >= 16) return attend_passes<HD, 16>(a, m, row, kvh, group, scores);
  if (group >= 8) return attend_passes<HD, 8>(a, m, row, kvh, group, scores);
  if (group >= 4) return attend_passes<HD, 4>(a, m, row, kvh, group, scores);
  attend_one_by_one<HD>(a, m, row, kvh, scores);
}

#pragma GCC diagnostic pop

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
