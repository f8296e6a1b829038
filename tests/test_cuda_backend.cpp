// The CUDA backend against the CPU backend, op by op, plus batch invariance and its error paths.
//
// Runs only where it can: built without CUDA the suite says "skipped: built without CUDA"; built with
// it but on a machine without a GPU (or driver) it checks the probe and the factory's refusal and says
// "skipped: no GPU". Never a silent pass.
// Tolerances (the CPU is the reference): element-wise ops 1e-5 relative (expf differs by ≤ 2 ulp);
// reductions (rms_norm, log_softmax, attention) 1e-5 absolute on values of order 1; gemm relative to
// Σ|x·w| of each output: 1e-5 for F32 weights, 1e-2 for BF16/F16/Q8_0 (the GPU rounds activations to
// the weight's 16-bit type, Q8_0 is BF16 after upload). Batch invariance is checked bit for bit.
#include <doctest/doctest.h>

#include "kernels/build_config.h"

#if SPECD_HAVE_CUDA

#include "kernels/backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant_k.h"
#include "kernels/cuda/cuda_backend.h"

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

using namespace specd;
using namespace specd::kernels;

namespace {

constexpr size_t kPool = size_t{256} << 20;

std::unique_ptr<Backend> gpu(size_t pool = kPool) {
  if (cuda_device_count() == 0) return nullptr;
  auto b = make_cuda_backend(0, pool);
  REQUIRE_MESSAGE(b.has_value(), b.error().message);
  return std::move(b.value());
}

#define REQUIRE_GPU(var)                    \
  auto var = gpu();                         \
  if (!var) {                               \
    MESSAGE("skipped: no GPU");             \
    return;                                 \
  }

// The CPU backend, the reference every op is compared with.
struct Reference {
  ThreadPool pool{2};
  std::unique_ptr<Backend> b = make_cpu_backend(pool);
  Backend* get() { return b.get(); }
};

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

template <class T>
T* upload(Backend& b, const std::vector<T>& v) {
  auto p = b.alloc(MemUse::Scratch, v.size() * sizeof(T));
  REQUIRE_MESSAGE(p.has_value(), p.error().message);
  b.copy_to_device(*p, v.data(), v.size() * sizeof(T));
  return static_cast<T*>(*p);
}

float* zeros(Backend& b, size_t n) { return upload(b, std::vector<float>(n, 0.0f)); }

template <class T>
std::vector<T> download(Backend& b, const T* p, size_t n) {
  std::vector<T> out(n);
  b.copy_to_host(out.data(), p, n * sizeof(T));
  Status s = b.sync();
  REQUIRE_MESSAGE(s.has_value(), s.error().message);
  return out;
}

void check_close(const std::vector<float>& got, const std::vector<float>& want, float abs_tol, float rel_tol) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= abs_tol + rel_tol * std::fabs(want[i]))) {
      if (bad++ < 5) FAIL_CHECK("element " << i << ": got " << got[i] << ", want " << want[i]);
    }
  CHECK(bad == 0);
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// A StepMeta for rows of several sequences. row_seq[r] names row r's sequence (index into kv_lens);
// each sequence has kv_len committed positions in blocks first_block + 0, 1, ...; its call rows see
// themselves and its earlier call rows (causal).
StepMeta make_meta(const std::vector<int32_t>& row_seq, const std::vector<int32_t>& kv_lens,
                   const std::vector<int32_t>& first_blocks, int32_t block_tokens, int32_t pos_base = 0) {
  StepMeta m;
  m.n_rows = static_cast<int32_t>(row_seq.size());
  m.pos.resize(row_seq.size());
  m.row_tile.resize(row_seq.size());
  m.row_local.resize(row_seq.size());
  for (size_t s = 0; s < kv_lens.size(); ++s) {
    SeqTile t;
    t.seq = static_cast<int32_t>(s);
    t.first = static_cast<int32_t>(m.row_ids.size());
    for (size_t r = 0; r < row_seq.size(); ++r)
      if (row_seq[r] == static_cast<int32_t>(s)) {
        m.row_tile[r] = static_cast<int32_t>(s);
        m.row_local[r] = t.n_rows++;
        m.pos[r] = pos_base + kv_lens[s] + m.row_local[r];
        m.row_ids.push_back(static_cast<int32_t>(r));
      }
    t.kv_len = kv_lens[s];
    t.first_block = static_cast<int32_t>(m.block_ids.size());
    t.n_blocks = (kv_lens[s] + t.n_rows + block_tokens - 1) / block_tokens;
    for (int32_t b = 0; b < t.n_blocks; ++b) m.block_ids.push_back(first_blocks[s] + b);
    t.words = (t.n_rows + 63) / 64;
    t.bits = static_cast<int64_t>(m.tile_bits.size());
    m.tile_bits.resize(m.tile_bits.size() + static_cast<size_t>(t.n_rows) * static_cast<size_t>(t.words), 0);
    for (int32_t i = 0; i < t.n_rows; ++i)
      for (int32_t j = 0; j <= i; ++j)
        m.tile_bits[static_cast<size_t>(t.bits + static_cast<int64_t>(i) * t.words + (j >> 6))] |= uint64_t{1} << (j & 63);
    m.max_kv_len = std::max(m.max_kv_len, t.kv_len);
    m.tiles.push_back(t);
  }
  m.n_outputs = m.n_rows;
  for (int32_t r = 0; r < m.n_rows; ++r) m.out_slot.push_back(r), m.out_rows.push_back(r);
  return m;
}

// A host weight matrix [rows][cols] of type t made from f32 values, kept alive by the caller.
struct HostWeight {
  std::vector<uint8_t> bytes;
  WeightView view;
};

HostWeight make_weight(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> f = random_floats(static_cast<size_t>(rows * cols), seed);
  HostWeight w;
  const size_t rb = ggml_row_bytes(t, cols);
  w.bytes.resize(rb * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = w.bytes.data() + static_cast<size_t>(r) * rb;
    const float* src = f.data() + r * cols;
    if (t == GgmlType::F32) std::memcpy(dst, src, rb);
    if (t == GgmlType::Q8_0) quantize_q8_0(src, cols, dst);
    if (ggml_type_quantized_act(t)) quantize_row(t, src, cols, dst);
    for (int64_t c = 0; c < cols && (t == GgmlType::F16 || t == GgmlType::BF16); ++c) {
      const uint16_t h = t == GgmlType::F16 ? f32_to_f16(src[c]) : f32_to_bf16(src[c]);
      std::memcpy(dst + 2 * c, &h, 2);
    }
  }
  w.view = WeightView{t, w.bytes.data(), rows, cols, rb};
  return w;
}

}  // namespace

TEST_CASE("cuda backend: the probe and the factory without a device") {
  const int n = cuda_device_count();
  CHECK(n >= 0);
  auto bad = make_cuda_backend(n, kPool);  // one past the last device
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == SPECD_E_INVALID_ARG);
  if (n == 0) {
    MESSAGE("skipped: no GPU");
    return;
  }
  auto zero = make_cuda_backend(0, 0);
  REQUIRE_FALSE(zero.has_value());
  CHECK(zero.error().code == SPECD_E_INVALID_ARG);
}

TEST_CASE("cuda backend: memory, budgets and recorded errors") {
  REQUIRE_GPU(b);
  CHECK(std::string(b->name()) == "cuda:0");
  CHECK_FALSE(b->host_memory());
  auto p = b->alloc(MemUse::Kv, 1000);
  REQUIRE(p.has_value());
  CHECK(reinterpret_cast<uintptr_t>(*p) % 64 == 0);
  CHECK(b->ledger().stats(MemUse::Kv).used >= 1000);
  b->ledger().set_budget(MemUse::Kv, 2000);
  auto over = b->alloc(MemUse::Kv, 4096);
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code == SPECD_E_NOMEM);
  CHECK(over.error().message.find("kv") != std::string::npos);
  auto huge = b->alloc(MemUse::Scratch, kPool * 2);
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().code == SPECD_E_NOMEM);
  b->free(*p);
  CHECK(b->ledger().stats(MemUse::Kv).used == 0);
  CHECK(b->sync().has_value());

  b->free(*p);  // double free: recorded, returned by the next sync only
  Status s = b->sync();
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == SPECD_E_INVALID_ARG);
  CHECK(b->sync().has_value());

  float* x = zeros(*b, 64);
  b->rope(x, 64, 1, RopeParams{RopeLayout::Adjacent, 64, 64, 10000.0f});  // no begin_step yet
  s = b->sync();
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == SPECD_E_INVALID_ARG);
  int32_t ids[1];
  float vals[1];
  b->topk(x, 1, 64, 65, ids, vals);  // k > cols
  s = b->sync();
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == SPECD_E_INVALID_ARG);
  const HostWeight q = make_weight(GgmlType::F32, 4, 64, 1);
  auto w = b->upload_weight(q.view);
  REQUIRE(w.has_value());
  const int32_t bad_id = 4;
  b->embed(*w, &bad_id, 1, x);
  s = b->sync();
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == SPECD_E_BAD_TOKEN);
  CHECK(b->sync().has_value());  // errors are not sticky unless the device context is lost
}

TEST_CASE("cuda backend: element-wise and row ops match the CPU backend") {
  REQUIRE_GPU(g);
  Reference ref;
  Backend* c = ref.get();
  if (!c) return;
  const int64_t rows = 5;
  const int32_t n = 1000;
  const size_t total = static_cast<size_t>(rows) * n;
  const std::vector<float> x = random_floats(total, 1, -4.0f, 4.0f);
  const std::vector<float> y = random_floats(total, 2, -4.0f, 4.0f);
  const std::vector<float> gain = random_floats(static_cast<size_t>(n), 3, 0.5f, 1.5f);
  auto run = [&](Backend& b, auto&& op) {
    float* dx = upload(b, x);
    float* dy = upload(b, y);
    float* dg = upload(b, gain);
    float* out = zeros(b, total);
    op(b, dx, dy, dg, out);
    return std::make_pair(download(b, dx, total), download(b, out, total));
  };
  SUBCASE("rms_norm") {
    auto op = [&](Backend& b, float* dx, float*, float* dg, float* out) { b.rms_norm(dx, dg, rows, n, 1e-5f, out); };
    check_close(run(*g, op).second, run(*c, op).second, 1e-5f, 1e-5f);
  }
  SUBCASE("swiglu") {
    auto op = [&](Backend& b, float* dx, float* dy, float*, float*) { b.swiglu(dx, dy, static_cast<int64_t>(total)); };
    check_close(run(*g, op).first, run(*c, op).first, 1e-6f, 1e-5f);
  }
  SUBCASE("silu") {
    auto op = [&](Backend& b, float* dx, float*, float*, float*) { b.silu(dx, static_cast<int64_t>(total)); };
    check_close(run(*g, op).first, run(*c, op).first, 1e-6f, 1e-5f);
  }
  SUBCASE("add and add3") {
    auto op = [&](Backend& b, float* dx, float* dy, float*, float* out) {
      b.add3(dx, dy, out, static_cast<int64_t>(total));
      b.add(dx, dy, static_cast<int64_t>(total));
    };
    auto got = run(*g, op), want = run(*c, op);
    CHECK(got.first == want.first);  // one rounding each: exact
    CHECK(got.second == want.second);
  }
  SUBCASE("log_softmax") {
    auto op = [&](Backend& b, float* dx, float*, float*, float*) { b.log_softmax(dx, rows, n); };
    check_close(run(*g, op).first, run(*c, op).first, 1e-5f, 1e-6f);
  }
}

TEST_CASE("cuda backend: topk matches the CPU backend exactly, ties to the lowest index") {
  REQUIRE_GPU(g);
  Reference ref;
  Backend* c = ref.get();
  if (!c) return;
  const int64_t rows = 3;
  const int32_t cols = 5000, k = 7;
  std::vector<float> x = random_floats(static_cast<size_t>(rows * cols), 4);
  for (int32_t i = 0; i < cols; i += 97) x[static_cast<size_t>(i)] = 2.0f;  // ties in row 0
  auto run = [&](Backend& b) {
    std::vector<int32_t> ids(static_cast<size_t>(rows * k));
    std::vector<float> vals(ids.size());
    b.topk(upload(b, x), rows, cols, k, ids.data(), vals.data());
    REQUIRE(b.sync().has_value());
    return std::make_pair(ids, vals);
  };
  auto got = run(*g), want = run(*c);
  CHECK(got.first == want.first);
  CHECK(got.second == want.second);
  CHECK(got.first[0] == 0);
  CHECK(got.first[1] == 97);
}

TEST_CASE("cuda backend: embed gathers every stored type") {
  REQUIRE_GPU(g);
  const std::vector<int32_t> ids = {3, 0, 7, 3};
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
    CAPTURE(ggml_type_name(t));
    const HostWeight hw = make_weight(t, 8, 96, 5);
    auto w = g->upload_weight(hw.view);
    REQUIRE_MESSAGE(w.has_value(), w.error().message);
    float* out = zeros(*g, ids.size() * 96);
    g->embed(*w, ids.data(), static_cast<int64_t>(ids.size()), out);
    const std::vector<float> got = download(*g, out, ids.size() * 96);
    std::vector<float> want(got.size());
    for (size_t i = 0; i < ids.size(); ++i) weight_row_to_f32(hw.view, ids[i], want.data() + i * 96);
    // Q8_0 is held as BF16 on the device: one bf16 rounding of d·q.
    check_close(got, want, 0.0f, t == GgmlType::Q8_0 ? 1.0f / 256 : 0.0f);
  }
}

TEST_CASE("cuda backend: Q4_0 and K-type weights are dequantized to BF16 at upload") {
  REQUIRE_GPU(g);
  const std::vector<int32_t> ids = {3, 0, 7, 3};
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    CAPTURE(ggml_type_name(t));
    const HostWeight hw = make_weight(t, 8, 512, 5);
    auto w = g->upload_weight(hw.view);
    REQUIRE_MESSAGE(w.has_value(), w.error().message);
    CHECK(w->type == GgmlType::BF16);
    float* out = zeros(*g, ids.size() * 512);
    g->embed(*w, ids.data(), static_cast<int64_t>(ids.size()), out);
    const std::vector<float> got = download(*g, out, ids.size() * 512);
    std::vector<float> want(got.size());
    for (size_t i = 0; i < ids.size(); ++i) weight_row_to_f32(hw.view, ids[i], want.data() + i * 512);
    check_close(got, want, 0.0f, 1.0f / 256);  // one bf16 rounding of the dequantized value
  }
}

TEST_CASE("cuda backend: gemm matches the CPU backend and is batch invariant") {
  REQUIRE_GPU(g);
  Reference ref;
  const int64_t n = 320, k = 512, m = 130, ldx = k + 8, ldy = n + 4;
  const std::vector<float> x = random_floats(static_cast<size_t>(m * ldx), 6);
  for (GgmlType t : {GgmlType::F32, GgmlType::BF16, GgmlType::F16, GgmlType::Q8_0}) {
    CAPTURE(ggml_type_name(t));
    const HostWeight hw = make_weight(t, n, k, 7);
    auto w = g->upload_weight(hw.view);
    REQUIRE_MESSAGE(w.has_value(), w.error().message);
    float* dx = upload(*g, x);
    float* dy = zeros(*g, static_cast<size_t>(m * ldy));
    g->gemm(*w, dx, ldx, m, dy, ldy);
    const std::vector<float> all = download(*g, dy, static_cast<size_t>(m * ldy));

    // Batch invariance: each row alone, and a few other batch sizes, give the same bits.
    for (int64_t mm : {int64_t{1}, int64_t{3}, int64_t{17}, int64_t{64}}) {
      CAPTURE(mm);
      const int64_t start = m - mm;  // the last mm rows, so no row sits at the same index
      g->gemm(*w, dx + start * ldx, ldx, mm, dy, ldy);
      const std::vector<float> part = download(*g, dy, static_cast<size_t>(mm * ldy));
      for (int64_t r = 0; r < mm; ++r)
        CHECK(same_bits(part.data() + r * ldy, all.data() + (start + r) * ldy, static_cast<size_t>(n)));
    }

    if (Backend* c = ref.get()) {
      auto cw = c->upload_weight(hw.view);
      REQUIRE(cw.has_value());
      float* cx = upload(*c, x);
      float* cy = zeros(*c, static_cast<size_t>(m * ldy));
      c->gemm(*cw, cx, ldx, m, cy, ldy);
      const std::vector<float> want = download(*c, cy, static_cast<size_t>(m * ldy));
      // Relative to Σ|x·w| of each output (the scale of its rounding errors).
      std::vector<float> wf(static_cast<size_t>(n * k));
      for (int64_t r = 0; r < n; ++r) weight_row_to_f32(hw.view, r, wf.data() + r * k);
      const double tol = t == GgmlType::F32 ? 1e-5 : 1e-2;
      size_t bad = 0;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double mag = 0;
          for (int64_t q = 0; q < k; ++q) mag += std::fabs(x[static_cast<size_t>(i * ldx + q)] * wf[static_cast<size_t>(j * k + q)]);
          const size_t at = static_cast<size_t>(i * ldy + j);
          if (std::fabs(all[at] - want[at]) > tol * mag + 1e-6 && bad++ < 5)
            FAIL_CHECK("y[" << i << "][" << j << "]: got " << all[at] << ", want " << want[at]);
        }
      CHECK(bad == 0);
    }
  }
}

namespace {

// One attention layer's inputs: KV storage with committed positions, and a call's q/k/v.
struct AttnCase {
  int32_t n_heads = 4, n_kv_heads = 2, head_dim = 64, layers = 2, layer = 1;
  KvLayout layout{2, 2 * 64, 16};
  std::vector<float> kv, q, k, v;
  int32_t q_dim() const { return n_heads * head_dim; }
};

AttnCase make_attn(int32_t n_blocks, int32_t rows, uint32_t seed) {
  AttnCase a;
  a.kv = random_floats(a.layout.block_floats() * static_cast<size_t>(n_blocks), seed);
  a.q = random_floats(static_cast<size_t>(rows * a.q_dim()), seed + 1, -2.0f, 2.0f);
  a.k = random_floats(static_cast<size_t>(rows * a.layout.kv_dim), seed + 2, -2.0f, 2.0f);
  a.v = random_floats(static_cast<size_t>(rows * a.layout.kv_dim), seed + 3);
  return a;
}

std::vector<float> run_attention(Backend& b, const AttnCase& c, const StepMeta& meta) {
  REQUIRE(b.begin_step(meta).has_value());
  AttentionArgs a;
  a.layer = c.layer;
  a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.head_dim = c.head_dim;
  a.q = upload(b, c.q), a.k = upload(b, c.k), a.v = upload(b, c.v);
  a.kv = upload(b, c.kv);
  const size_t out_n = static_cast<size_t>(meta.n_rows) * static_cast<size_t>(c.q_dim());
  a.out = zeros(b, out_n);
  a.layout = c.layout;
  b.attention(a);
  return download(b, a.out, out_n);
}

}  // namespace

TEST_CASE("cuda backend: attention matches the CPU backend") {
  REQUIRE_GPU(g);
  Reference ref;
  Backend* c = ref.get();
  if (!c) return;
  // Two sequences, rows interleaved: seq 0 has 37 committed positions (3 blocks), seq 1 has 5.
  const std::vector<int32_t> row_seq = {0, 1, 0, 0, 1};
  const StepMeta meta = make_meta(row_seq, {37, 5}, {0, 4}, 16);
  const AttnCase a = make_attn(6, 5, 8);
  check_close(run_attention(*g, a, meta), run_attention(*c, a, meta), 1e-5f, 1e-5f);
}

TEST_CASE("cuda backend: a row's attention has the same bits alone, after committing its predecessors") {
  REQUIRE_GPU(g);
  // Call 1: 4 rows of one sequence over 20 committed positions. Call 2: row 3 alone, after rows 0..2
  // were committed (by kv_commit) into positions 20..22: its output must be the same bits.
  AttnCase a = make_attn(4, 4, 9);
  const StepMeta four = make_meta({0, 0, 0, 0}, {20}, {0}, 16);
  const std::vector<float> out4 = run_attention(*g, a, four);

  float* kv = upload(*g, a.kv);
  // kv_commit takes [layers][row_stride][kv_dim]: put this layer's rows in plane `layer`, zeros elsewhere.
  std::vector<float> k_all(static_cast<size_t>(a.layers) * 4 * a.layout.kv_dim, 0.0f), v_all = k_all;
  std::copy(a.k.begin(), a.k.end(), k_all.begin() + static_cast<ptrdiff_t>(a.layer) * 4 * a.layout.kv_dim);
  std::copy(a.v.begin(), a.v.end(), v_all.begin() + static_cast<ptrdiff_t>(a.layer) * 4 * a.layout.kv_dim);
  const int32_t rows[3] = {0, 1, 2}, slots[3] = {20, 21, 22};  // block 1, positions 4..6
  KvCommitArgs kc;
  kc.k = upload(*g, k_all), kc.v = upload(*g, v_all);
  kc.row_stride = 4;
  kc.rows = rows, kc.slots = slots, kc.n = 3;
  kc.kv = kv;
  kc.layout = a.layout;
  g->kv_commit(kc);
  std::vector<float> committed = download(*g, kv, a.kv.size());
  // kv_commit is a copy: the committed K/V are the call's bits.
  for (int32_t r = 0; r < 3; ++r) {
    const float* kd = committed.data() + a.layout.offset(1, a.layer, 0, 4 + r);
    const float* vd = committed.data() + a.layout.offset(1, a.layer, 1, 4 + r);
    CHECK(same_bits(kd, a.k.data() + r * a.layout.kv_dim, static_cast<size_t>(a.layout.kv_dim)));
    CHECK(same_bits(vd, a.v.data() + r * a.layout.kv_dim, static_cast<size_t>(a.layout.kv_dim)));
  }

  AttnCase one = a;
  one.kv = committed;
  one.q.assign(a.q.begin() + 3 * a.q_dim(), a.q.end());
  one.k.assign(a.k.begin() + 3 * a.layout.kv_dim, a.k.end());
  one.v.assign(a.v.begin() + 3 * a.layout.kv_dim, a.v.end());
  const StepMeta single = make_meta({0}, {23}, {0}, 16);
  const std::vector<float> out1 = run_attention(*g, one, single);
  CHECK(same_bits(out1.data(), out4.data() + 3 * a.q_dim(), static_cast<size_t>(a.q_dim())));
}

TEST_CASE("cuda backend: rope and kv_commit match the CPU backend") {
  REQUIRE_GPU(g);
  Reference ref;
  Backend* c = ref.get();
  if (!c) return;
  const StepMeta meta = make_meta({0, 1, 0}, {1000, 7}, {0, 1}, 16, 4000);
  const int32_t n_heads = 3, head_dim = 64;
  const int64_t ld = n_heads * head_dim + 16;
  const std::vector<float> x = random_floats(static_cast<size_t>(3 * ld), 10);
  for (RopeLayout layout : {RopeLayout::Adjacent, RopeLayout::Neox}) {
    const RopeParams p{layout, head_dim, 32, 500000.0f};
    auto run = [&](Backend& b) {
      REQUIRE(b.begin_step(meta).has_value());
      float* d = upload(b, x);
      b.rope(d, ld, n_heads, p);
      return download(b, d, x.size());
    };
    check_close(run(*g), run(*c), 1e-5f, 1e-5f);
  }

  AttnCase a = make_attn(3, 4, 11);
  std::vector<float> k_all = random_floats(static_cast<size_t>(a.layers) * 4 * a.layout.kv_dim, 12), v_all = k_all;
  std::reverse(v_all.begin(), v_all.end());
  const int32_t rows[2] = {3, 1}, slots[2] = {0, 47};
  auto run = [&](Backend& b) {
    float* kv = upload(b, a.kv);
    KvCommitArgs kc;
    kc.k = upload(b, k_all), kc.v = upload(b, v_all);
    kc.row_stride = 4;
    kc.rows = rows, kc.slots = slots, kc.n = 2;
    kc.kv = kv;
    kc.layout = a.layout;
    b.kv_commit(kc);
    return download(b, kv, a.kv.size());
  };
  CHECK(run(*g) == run(*c));
}

#else  // !SPECD_HAVE_CUDA

TEST_CASE("cuda backend") { MESSAGE("skipped: built without CUDA"); }

#endif
