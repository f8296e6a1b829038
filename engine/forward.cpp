// Forward::run and Forward::commit: the row/visibility transformer pass and KV commit.
#include "engine/forward.h"

#include "engine/attention.h"
#include "engine/row_ops.h"

#include <algorithm>
#include <cstring>

namespace specd::engine {

// Grow-only buffers: sized by the largest call so far, so steady-state calls never allocate.
struct Forward::Scratch {
  int32_t rows = 0, outs = 0;
  std::vector<float> x, xn, q, att, tmp, gate, up;  // [rows][...]
  std::vector<float> k, v;                          // [layers][rows][kv_dim]
  std::vector<float> hidden, logits;                // [outs][dim], [outs][vocab]
  std::vector<float> scores;                        // [workers][ctx + rows]
  std::vector<int32_t> out_rows;                    // output index -> row
};

namespace {
template <class T>
void ensure(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
}  // namespace

Forward::Forward(const Model& model, KvCache& kv, kernels::ThreadPool& pool)
    : model_(model), kv_(kv), pool_(pool), s_(std::make_shared<Scratch>()), rope_(model.config()) {}

void Forward::reserve(int32_t rows, int32_t outs) {
  const ModelConfig& c = model_.config();
  Scratch& s = *s_;
  const size_t R = static_cast<size_t>(std::max(rows, s.rows));
  const size_t O = static_cast<size_t>(std::max(outs, s.outs));
  ensure(s.x, R * static_cast<size_t>(c.dim));
  ensure(s.xn, R * static_cast<size_t>(c.dim));
  ensure(s.tmp, R * static_cast<size_t>(c.dim));
  ensure(s.q, R * static_cast<size_t>(c.q_dim()));
  ensure(s.att, R * static_cast<size_t>(c.q_dim()));
  ensure(s.gate, R * static_cast<size_t>(c.ffn_dim));
  ensure(s.up, R * static_cast<size_t>(c.ffn_dim));
  ensure(s.k, static_cast<size_t>(c.n_layers) * R * static_cast<size_t>(c.kv_dim()));
  ensure(s.v, static_cast<size_t>(c.n_layers) * R * static_cast<size_t>(c.kv_dim()));
  ensure(s.hidden, O * static_cast<size_t>(c.dim));
  ensure(s.logits, O * static_cast<size_t>(c.vocab));
  ensure(s.out_rows, O);
  ensure(s.scores, static_cast<size_t>(pool_.size()) * (static_cast<size_t>(c.ctx_len) + R));
  s.rows = static_cast<int32_t>(R);
  s.outs = static_cast<int32_t>(O);
}

Status Forward::validate(const Batch& b) const {
  const ModelConfig& c = model_.config();
  for (int32_t i = 0; i < b.size(); ++i) {
    const Row& r = b.row(i);
    if (r.token < 0 || r.token >= c.vocab)
      return make_error(SPECD_E_BAD_TOKEN, "row %d: token id %d out of range [0, %d)", i, r.token, c.vocab);
    if (!kv_.valid(r.seq)) return make_error(SPECD_E_INVALID_ARG, "row %d: unknown sequence %d", i, r.seq);
    if (r.pos < 0 || r.pos >= c.ctx_len)
      return make_error(SPECD_E_CONTEXT, "row %d: position %d outside the context length %d", i, r.pos, c.ctx_len);
    for (int32_t j = 0; j < b.size(); ++j)
      if (b.visible(i, j) && b.row(j).seq != r.seq)
        return make_error(SPECD_E_INVALID_ARG, "row %d sees row %d of another sequence", i, j);
  }
  return {};
}

Status Forward::run(const Batch& batch) {
  last_ = nullptr;
  SPECD_TRY(validate(batch));
  const int32_t n = batch.size();
  if (n == 0) return {};
  reserve(n, batch.n_outputs());
  Scratch& s = *s_;
  const ModelConfig& c = model_.config();
  for (int32_t i = 0; i < n; ++i)
    kernels::weight_row_to_f32(model_.token_embd(), batch.row(i).token, s.x.data() + static_cast<int64_t>(i) * c.dim);
  for (int32_t l = 0; l < c.n_layers; ++l) layer(batch, l);
  output(batch);
  last_ = &batch;
  return {};
}

void Forward::layer(const Batch& batch, int32_t l) {
  Scratch& s = *s_;
  const ModelConfig& c = model_.config();
  const LayerWeights& L = model_.layer(l);
  const int32_t n = batch.size();
  const int64_t dim = c.dim, kvd = c.kv_dim(), qd = c.q_dim();
  float* kl = s.k.data() + static_cast<int64_t>(l) * s.rows * kvd;
  float* vl = s.v.data() + static_cast<int64_t>(l) * s.rows * kvd;

  for (int32_t i = 0; i < n; ++i) rms_norm(&s.x[i * dim], L.attn_norm.data(), c.dim, c.rms_eps, &s.xn[i * dim]);
  kernels::matmul(L.wq, s.xn.data(), dim, n, s.q.data(), qd, pool_);
  kernels::matmul(L.wk, s.xn.data(), dim, n, kl, kvd, pool_);
  kernels::matmul(L.wv, s.xn.data(), dim, n, vl, kvd, pool_);
  for (int32_t i = 0; i < n; ++i) {
    rope_.apply(&s.q[i * qd], c.n_heads, batch.row(i).pos);
    rope_.apply(&kl[i * kvd], c.n_kv_heads, batch.row(i).pos);
  }
  attention(batch, l, kl, vl);
  kernels::matmul(L.wo, s.att.data(), qd, n, s.tmp.data(), dim, pool_);
  add_into(s.x.data(), s.tmp.data(), n * dim);

  for (int32_t i = 0; i < n; ++i) rms_norm(&s.x[i * dim], L.ffn_norm.data(), c.dim, c.rms_eps, &s.xn[i * dim]);
  const int64_t fd = c.ffn_dim;
  kernels::matmul(L.w_gate, s.xn.data(), dim, n, s.gate.data(), fd, pool_);
  kernels::matmul(L.w_up, s.xn.data(), dim, n, s.up.data(), fd, pool_);
  silu_mul(s.gate.data(), s.up.data(), n * fd);
  kernels::matmul(L.w_down, s.gate.data(), fd, n, s.tmp.data(), dim, pool_);
  add_into(s.x.data(), s.tmp.data(), n * dim);
}

void Forward::attention(const Batch& batch, int32_t l, const float* kl, const float* vl) {
  Scratch& s = *s_;
  const ModelConfig& c = model_.config();
  AttentionInputs in{&c, &batch, &kv_, l, s.q.data(), kl, vl, s.att.data()};
  const int32_t n = batch.size();
  const size_t stride = static_cast<size_t>(c.ctx_len) + static_cast<size_t>(s.rows);
  auto task = [&](int64_t t, int worker) {
    attend_group(in, static_cast<int32_t>(t / c.n_kv_heads), static_cast<int32_t>(t % c.n_kv_heads),
                 s.scores.data() + static_cast<size_t>(worker) * stride);
  };
  // Attention is small next to the weight products unless many rows see long prefixes.
  const int64_t tasks = static_cast<int64_t>(n) * c.n_kv_heads;
  const int64_t work = static_cast<int64_t>(n) * c.n_heads * (kv_.length(batch.row(0).seq) + n) * c.head_dim;
  if (work < (1 << 16) || pool_.size() == 1) {
    for (int64_t t = 0; t < tasks; ++t) task(t, 0);
  } else {
    pool_.run(tasks, task);
  }
}

void Forward::output(const Batch& batch) {
  Scratch& s = *s_;
  const ModelConfig& c = model_.config();
  int32_t outs = 0;
  for (int32_t i = 0; i < batch.size(); ++i) {
    const Row& r = batch.row(i);
    if (r.out_index < 0) continue;
    rms_norm(&s.x[static_cast<int64_t>(i) * c.dim], model_.output_norm().data(), c.dim, c.rms_eps,
             &s.hidden[static_cast<int64_t>(r.out_index) * c.dim]);
    s.out_rows[static_cast<size_t>(r.out_index)] = i;
    ++outs;
  }
  if (outs > 0) kernels::matmul(model_.output(), s.hidden.data(), c.dim, outs, s.logits.data(), c.vocab, pool_);
}

std::span<const float> Forward::logits(int32_t out_index) const {
  const int32_t v = model_.config().vocab;
  return {s_->logits.data() + static_cast<int64_t>(out_index) * v, static_cast<size_t>(v)};
}

std::span<const float> Forward::hidden(int32_t out_index) const {
  const int32_t d = model_.config().dim;
  return {s_->hidden.data() + static_cast<int64_t>(out_index) * d, static_cast<size_t>(d)};
}

Status Forward::commit(SeqId seq, std::span<const int32_t> rows) {
  if (!last_) return make_error(SPECD_E_INVALID_ARG, "commit without a successful forward");
  const Batch& b = *last_;
  const int32_t start = kv_.length(seq);
  for (size_t t = 0; t < rows.size(); ++t) {
    const int32_t i = rows[t];
    if (i < 0 || i >= b.size() || b.row(i).seq != seq)
      return make_error(SPECD_E_INVALID_ARG, "commit: row %d is not a row of sequence %d in the last call", i, seq);
    if (b.row(i).pos != start + static_cast<int32_t>(t))
      return make_error(SPECD_E_INVALID_ARG, "commit: row %d has position %d, the cache expects %d", i,
                        b.row(i).pos, start + static_cast<int32_t>(t));
  }
  const ModelConfig& c = model_.config();
  const size_t kvd = static_cast<size_t>(c.kv_dim());
  for (size_t t = 0; t < rows.size(); ++t) {
    const int32_t pos = start + static_cast<int32_t>(t);
    if (Status st = kv_.reserve_one(seq); !st) {
      kv_.truncate(seq, start);  // all or nothing
      return st;
    }
    for (int32_t l = 0; l < c.n_layers; ++l) {
      const size_t off = (static_cast<size_t>(l) * static_cast<size_t>(s_->rows) + static_cast<size_t>(rows[t])) * kvd;
      std::memcpy(kv_.key_slot(seq, l, pos), s_->k.data() + off, kvd * sizeof(float));
      std::memcpy(kv_.value_slot(seq, l, pos), s_->v.data() + off, kvd * sizeof(float));
    }
    kv_.set_length(seq, pos + 1);
  }
  return {};
}

}  // namespace specd::engine
