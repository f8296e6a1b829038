// attend_head: softmax(q·Kᵀ/√d) V over committed positions (block by block) and visible call rows.
#include "engine/attention.h"

#include <cmath>
#include <limits>

namespace specd::engine {
namespace {

#define SPECD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

SPECD_CLONES float dot(const float* a, const float* b, int32_t n) {
  float s = 0.0f;
  for (int32_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

SPECD_CLONES void axpy(float a, const float* x, float* y, int32_t n) {
  for (int32_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void attend_head(const AttentionInputs& in, int32_t row, int32_t head, float* scores) {
  const ModelConfig& c = *in.cfg;
  const Row& r = in.batch->row(row);
  const int32_t hd = c.head_dim;
  const int32_t kvh = head / (c.n_heads / c.n_kv_heads);
  const int32_t kv_dim = c.kv_dim();
  const float* q = in.q + static_cast<int64_t>(row) * c.q_dim() + static_cast<int64_t>(head) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int32_t committed = in.kv->length(r.seq);
  const int32_t bt = in.kv->block_tokens();

  float mx = -std::numeric_limits<float>::infinity();
  for (int32_t p0 = 0; p0 < committed; p0 += bt) {
    const float* kb = in.kv->key(r.seq, in.layer, p0) + static_cast<int64_t>(kvh) * hd;
    const int32_t n = std::min(bt, committed - p0);
    for (int32_t j = 0; j < n; ++j) {
      const float s = dot(q, kb + static_cast<int64_t>(j) * kv_dim, hd) * scale;
      scores[p0 + j] = s;
      mx = std::max(mx, s);
    }
  }
  const int32_t n_rows = in.batch->size();
  int32_t n_vis = committed;
  for (int32_t j = 0; j < n_rows; ++j) {
    if (!in.batch->visible(row, j)) continue;
    const float s = dot(q, in.k + static_cast<int64_t>(j) * kv_dim + static_cast<int64_t>(kvh) * hd, hd) * scale;
    scores[n_vis++] = s;
    mx = std::max(mx, s);
  }
  float sum = 0.0f;
  for (int32_t i = 0; i < n_vis; ++i) {
    scores[i] = std::exp(scores[i] - mx);
    sum += scores[i];
  }
  const float inv = 1.0f / sum;
  float* out = in.out + static_cast<int64_t>(row) * c.q_dim() + static_cast<int64_t>(head) * hd;
  for (int32_t i = 0; i < hd; ++i) out[i] = 0.0f;
  for (int32_t p0 = 0; p0 < committed; p0 += bt) {
    const float* vb = in.kv->value(r.seq, in.layer, p0) + static_cast<int64_t>(kvh) * hd;
    const int32_t n = std::min(bt, committed - p0);
    for (int32_t j = 0; j < n; ++j) axpy(scores[p0 + j] * inv, vb + static_cast<int64_t>(j) * kv_dim, out, hd);
  }
  int32_t at = committed;
  for (int32_t j = 0; j < n_rows; ++j) {
    if (!in.batch->visible(row, j)) continue;
    axpy(scores[at++] * inv, in.v + static_cast<int64_t>(j) * kv_dim + static_cast<int64_t>(kvh) * hd, out, hd);
  }
}

}  // namespace specd::engine
