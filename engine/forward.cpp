// Forward::run and Forward::commit: the row/visibility transformer pass and KV commit, on a backend.
#include "engine/forward.h"

#include "kernels/cpu/cpu_backend.h"

#include <algorithm>

namespace specd::engine {

using kernels::MemUse;

// Grow-only backend buffers: sized by the largest call so far, so steady-state calls never allocate.
struct Forward::Scratch {
  kernels::Backend& be;
  int32_t rows = 0, outs = 0;
  float *x = nullptr, *xn = nullptr, *q = nullptr, *att = nullptr, *tmp = nullptr, *gate = nullptr, *up = nullptr;
  float *k = nullptr, *v = nullptr;            // [layers][rows][kv_dim]
  float *hidden = nullptr, *logits = nullptr;  // [outs][dim], [outs][vocab]
  std::vector<float> hidden_host, logits_host; // read-back copies when the backend is not host memory

  explicit Scratch(kernels::Backend& b) : be(b) {}
  ~Scratch() { release(); }
  void release() {
    for (float** p : {&x, &xn, &q, &att, &tmp, &gate, &up, &k, &v, &hidden, &logits}) {
      be.free(*p);
      *p = nullptr;
    }
  }
};

namespace {
Status grow(kernels::Backend& be, float** p, size_t floats) {
  be.free(*p);
  *p = nullptr;
  auto r = be.alloc(MemUse::Scratch, floats * sizeof(float));
  if (!r) return r.error();
  *p = static_cast<float*>(*r);
  return {};
}
}  // namespace

Forward::Forward(const Model& model, KvCache& kv, kernels::ThreadPool& pool, const ModelWeights* weights)
    : weights_(weights), model_(model), kv_(kv) {
  if (!weights_) {
    own_backend_ = kernels::make_cpu_backend(pool);
    auto w = ModelWeights::upload(model, *own_backend_);
    if (!w) {
      init_ = w.error();
      return;
    }
    own_weights_ = std::move(*w);
    weights_ = own_weights_.get();
  }
  init();
}

void Forward::init() {
  s_ = std::make_unique<Scratch>(backend());
  meta_.kv_capacity = model_.config().ctx_len;
  meta_.block_ids.reserve(static_cast<size_t>(kv_.n_blocks()));  // every tile's blocks are distinct
  auto st = backend().alloc(MemUse::Kv, kv_.storage_bytes());
  if (!st) {
    init_ = st.error();
    return;
  }
  kv_storage_ = static_cast<float*>(*st);
}

Forward::~Forward() {
  s_.reset();
  if (weights_) backend().free(kv_storage_);
}

Status Forward::reserve(int32_t rows, int32_t outs) {
  const ModelConfig& c = model_.config();
  Scratch& s = *s_;
  kernels::Backend& be = backend();
  if (rows > s.rows) {
    const size_t R = static_cast<size_t>(std::max(rows, 2 * s.rows));
    const size_t dim = static_cast<size_t>(c.dim), qd = static_cast<size_t>(c.q_dim()),
                 kvd = static_cast<size_t>(c.kv_dim()), fd = static_cast<size_t>(c.ffn_dim),
                 L = static_cast<size_t>(c.n_layers);
    s.rows = 0;  // a failure below leaves no buffer claiming a size it does not have
    for (auto [p, n] : {std::pair{&s.x, dim}, {&s.xn, dim}, {&s.tmp, dim}, {&s.q, qd}, {&s.att, qd}, {&s.gate, fd},
                        {&s.up, fd}, {&s.k, L * kvd}, {&s.v, L * kvd}})
      SPECD_TRY(grow(be, p, R * n));
    s.rows = static_cast<int32_t>(R);
    commit_slots_.reserve(R);
  }
  if (outs > s.outs) {
    const size_t O = static_cast<size_t>(std::max(outs, 2 * s.outs));
    s.outs = 0;
    SPECD_TRY(grow(be, &s.hidden, O * static_cast<size_t>(c.dim)));
    SPECD_TRY(grow(be, &s.logits, O * static_cast<size_t>(c.vocab)));
    if (!be.host_memory()) {
      s.hidden_host.resize(O * static_cast<size_t>(c.dim));
      s.logits_host.resize(O * static_cast<size_t>(c.vocab));
    }
    s.outs = static_cast<int32_t>(O);
  }
  return {};
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
  }
  if (b.cross_sequence_row() >= 0)
    return make_error(SPECD_E_INVALID_ARG, "row %d sees a row of another sequence", b.cross_sequence_row());
  return {};
}

void Forward::build_step(const Batch& b) {
  kernels::StepMeta& m = meta_;
  m.clear();
  m.n_rows = b.size();
  m.n_outputs = b.n_outputs();
  m.out_rows.resize(static_cast<size_t>(b.n_outputs()));
  for (int32_t i = 0; i < b.size(); ++i) {
    const Row& r = b.row(i);
    m.tokens.push_back(r.token);
    m.pos.push_back(r.pos);
    m.row_tile.push_back(b.group_of(i));
    m.row_local.push_back(b.local_of(i));
    m.out_slot.push_back(r.out_index);
    if (r.out_index >= 0) m.out_rows[static_cast<size_t>(r.out_index)] = i;
  }
  for (int32_t g = 0; g < b.n_groups(); ++g) {
    const Batch::Group& G = b.group(g);
    kernels::SeqTile t;
    t.seq = G.seq;
    t.first = static_cast<int32_t>(m.row_ids.size());
    t.n_rows = static_cast<int32_t>(G.rows.size());
    t.kv_len = kv_.length(G.seq);
    const std::span<const int32_t> blocks = kv_.block_table(G.seq);
    t.first_block = static_cast<int32_t>(m.block_ids.size());
    t.n_blocks = (t.kv_len + kv_.block_tokens() - 1) / kv_.block_tokens();
    t.bits = static_cast<int64_t>(m.tile_bits.size());
    t.words = (t.n_rows + 63) / 64;
    m.row_ids.insert(m.row_ids.end(), G.rows.begin(), G.rows.end());
    m.block_ids.insert(m.block_ids.end(), blocks.begin(), blocks.begin() + t.n_blocks);
    for (int32_t i = 0; i < t.n_rows; ++i) {
      const auto row = G.bits.begin() + static_cast<std::ptrdiff_t>(i) * G.words;
      m.tile_bits.insert(m.tile_bits.end(), row, row + t.words);
    }
    m.max_kv_len = std::max(m.max_kv_len, t.kv_len);
    m.tiles.push_back(t);
  }
}

Status Forward::run(const Batch& batch) {
  last_ = nullptr;
  SPECD_TRY(init_);
  SPECD_TRY(validate(batch));
  const int32_t n = batch.size();
  if (n == 0) return {};
  SPECD_TRY(reserve(n, batch.n_outputs()));
  build_step(batch);
  kernels::Backend& be = backend();
  SPECD_TRY(be.begin_step(meta_));
  be.embed(weights_->token_embd(), meta_.tokens.data(), n, s_->x);
  for (int32_t l = 0; l < model_.config().n_layers; ++l) layer(l);
  output();
  SPECD_TRY(be.sync());
  last_ = &batch;
  return {};
}

void Forward::layer(int32_t l) {
  Scratch& s = *s_;
  kernels::Backend& be = backend();
  const ModelConfig& c = model_.config();
  const LayerTensors& L = weights_->layer(l);
  const int32_t n = meta_.n_rows;
  const int64_t dim = c.dim, kvd = c.kv_dim(), qd = c.q_dim(), fd = c.ffn_dim;
  float* kl = s.k + static_cast<int64_t>(l) * s.rows * kvd;
  float* vl = s.v + static_cast<int64_t>(l) * s.rows * kvd;

  be.rms_norm(s.x, L.attn_norm, n, c.dim, c.rms_eps, s.xn);
  be.gemm(L.wq, s.xn, dim, n, s.q, qd);
  be.gemm(L.wk, s.xn, dim, n, kl, kvd);
  be.gemm(L.wv, s.xn, dim, n, vl, kvd);
  if (L.bq) {  // qwen2
    be.add_bias(s.q, L.bq, n, static_cast<int32_t>(qd));
    be.add_bias(kl, L.bk, n, static_cast<int32_t>(kvd));
    be.add_bias(vl, L.bv, n, static_cast<int32_t>(kvd));
  }
  if (L.q_norm) {  // qwen3: each head's RMSNorm, in place (a row of q is n_heads rows of head_dim)
    be.rms_norm(s.q, L.q_norm, static_cast<int64_t>(n) * c.n_heads, c.head_dim, c.rms_eps, s.q);
    be.rms_norm(kl, L.k_norm, static_cast<int64_t>(n) * c.n_kv_heads, c.head_dim, c.rms_eps, kl);
  }
  kernels::RopeParams rp = c.rope_params();
  rp.freq_factors = weights_->rope_freqs();
  be.rope(s.q, qd, c.n_heads, rp);
  be.rope(kl, kvd, c.n_kv_heads, rp);
  kernels::AttentionArgs a;
  a.layer = l;
  a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.head_dim = c.head_dim;
  a.q = s.q, a.k = kl, a.v = vl, a.out = s.att;
  a.kv = kv_storage_;
  a.layout = kv_.layout();
  be.attention(a);
  be.gemm(L.wo, s.att, qd, n, s.tmp, dim);
  be.add(s.x, s.tmp, n * dim);

  be.rms_norm(s.x, L.ffn_norm, n, c.dim, c.rms_eps, s.xn);
  be.gemm(L.w_gate, s.xn, dim, n, s.gate, fd);
  be.gemm(L.w_up, s.xn, dim, n, s.up, fd);
  be.swiglu(s.gate, s.up, n * fd);
  be.gemm(L.w_down, s.gate, fd, n, s.tmp, dim);
  be.add(s.x, s.tmp, n * dim);
}

void Forward::output() {
  Scratch& s = *s_;
  kernels::Backend& be = backend();
  const ModelConfig& c = model_.config();
  const int32_t outs = meta_.n_outputs;
  if (outs == 0) return;
  for (int32_t o = 0; o < outs; ++o)
    be.rms_norm(s.x + static_cast<int64_t>(meta_.out_rows[static_cast<size_t>(o)]) * c.dim, weights_->output_norm(), 1,
                c.dim, c.rms_eps, s.hidden + static_cast<int64_t>(o) * c.dim);
  be.gemm(weights_->output(), s.hidden, c.dim, outs, s.logits, c.vocab);
  if (!be.host_memory()) {  // only the rows that want outputs come back
    be.copy_to_host(s.hidden_host.data(), s.hidden, static_cast<size_t>(outs) * static_cast<size_t>(c.dim) * sizeof(float));
    be.copy_to_host(s.logits_host.data(), s.logits,
                    static_cast<size_t>(outs) * static_cast<size_t>(c.vocab) * sizeof(float));
  }
}

std::span<const float> Forward::logits(int32_t out_index) const {
  const int32_t v = model_.config().vocab;
  const float* base = backend().host_memory() ? s_->logits : s_->logits_host.data();
  return {base + static_cast<int64_t>(out_index) * v, static_cast<size_t>(v)};
}

std::span<const float> Forward::hidden(int32_t out_index) const {
  const int32_t d = model_.config().dim;
  const float* base = backend().host_memory() ? s_->hidden : s_->hidden_host.data();
  return {base + static_cast<int64_t>(out_index) * d, static_cast<size_t>(d)};
}

Status Forward::read_kv(SeqId seq, int32_t layer, int32_t pos, float* k, float* v) const {
  if (!kv_.valid(seq) || pos < 0 || pos >= kv_.length(seq) || layer < 0 || layer >= model_.config().n_layers)
    return make_error(SPECD_E_INVALID_ARG, "read_kv: no committed position %d of layer %d in sequence %d", pos, layer, seq);
  const kernels::KvLayout& L = kv_.layout();
  const int32_t slot = kv_.slot(seq, pos);
  const size_t bytes = static_cast<size_t>(L.kv_dim) * sizeof(float);
  backend().copy_to_host(k, kv_storage_ + L.offset(slot / L.block_tokens, layer, 0, slot % L.block_tokens), bytes);
  backend().copy_to_host(v, kv_storage_ + L.offset(slot / L.block_tokens, layer, 1, slot % L.block_tokens), bytes);
  return backend().sync();
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
  commit_slots_.clear();
  for (size_t t = 0; t < rows.size(); ++t) {
    const int32_t pos = start + static_cast<int32_t>(t);
    if (Status st = kv_.reserve_one(seq); !st) {
      kv_.truncate(seq, start);  // all or nothing
      return st;
    }
    kv_.set_length(seq, pos + 1);
    commit_slots_.push_back(kv_.slot(seq, pos));
  }
  kernels::KvCommitArgs a;
  a.k = s_->k, a.v = s_->v, a.row_stride = s_->rows;
  a.rows = rows.data(), a.slots = commit_slots_.data(), a.n = static_cast<int32_t>(rows.size());
  a.kv = kv_storage_;
  a.layout = kv_.layout();
  backend().kv_commit(a);
  return {};
}

}  // namespace specd::engine
