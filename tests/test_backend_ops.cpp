// Backend conformance (llama.cpp's test-backend-ops is the model): every op of kernels/backend.h on
// the backend under test (SPECD_TEST_DEVICE: the CPU here, the GPU in the "backend_ops-cuda" run)
// against an independent float64 reference written here, and the batch invariance lossless decoding
// rests on, bit for bit: a row's result is the same whatever else the call holds.
#include "kernels/backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/device.h"
#include "tests/test_device.h"
#include "tests/test_weights.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

using namespace specd;
using namespace specd::kernels;
using specd::test::make_weights;
using specd::test::random_floats;

namespace {

// The backend under test, one per process.
Backend& backend() {
  static ThreadPool pool(2);
  static std::unique_ptr<Backend> b = [] {
    auto choice = parse_device(specd::test::test_device());
    REQUIRE(choice.has_value());
    auto opened = open_backend(*choice, pool, size_t{512} << 20);
    REQUIRE_MESSAGE(opened.has_value(), (opened ? "" : opened.error().message));
    MESSAGE("backend under test: " << opened->why);
    return std::move(opened->backend);
  }();
  return *b;
}

// A backend buffer holding host values; read() copies back and waits.
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count, MemUse use = MemUse::Scratch) : n(count) {
    auto r = backend().alloc(use, std::max<size_t>(1, n) * sizeof(T));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    p = static_cast<T*>(*r);
  }
  explicit DevBuf(const std::vector<T>& host) : DevBuf(host.size()) {
    backend().copy_to_device(p, host.data(), n * sizeof(T));
  }
  ~DevBuf() { backend().free(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  std::vector<T> read() const {
    std::vector<T> h(n);
    backend().copy_to_host(h.data(), p, n * sizeof(T));
    REQUIRE(backend().sync().has_value());
    return h;
  }
};

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// A weight matrix copied to the backend.
struct DevWeight {
  specd::test::Weights host;
  WeightView view;
  DevWeight(GgmlType t, int64_t n, int64_t k, std::mt19937_64& rng) : host(make_weights(t, n, k, rng)) {
    auto v = backend().upload_weight(host.view());
    REQUIRE_MESSAGE(v.has_value(), (v ? "" : v.error().message));
    view = *v;
  }
  ~DevWeight() {
    if (!backend().host_memory()) backend().free(const_cast<void*>(view.data));
  }
};

}  // namespace

TEST_CASE("backend ops: gemm for every weight type at m = 1..64 against float64, each row the same bits at every m") {
  std::mt19937_64 rng(7);
  const int64_t N = 48, K = 96, M = 64;
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
    const std::string type_name = ggml_type_name(t);
    CAPTURE(type_name);
    DevWeight w(t, N, K, rng);
    const std::vector<float> x = random_floats(static_cast<size_t>(M * K), rng);
    DevBuf<float> dx(x), dy(static_cast<size_t>(M * N));
    // Alone: each row in a call of its own.
    std::vector<float> alone(static_cast<size_t>(M * N));
    for (int64_t i = 0; i < M; ++i) {
      backend().gemm(w.view, dx.p + i * K, K, 1, dy.p, N);
      const auto y = dy.read();
      std::copy_n(y.begin(), N, alone.begin() + i * N);
    }
    // Against float64: the half types may round the activations to bf16 (AVX512-BF16, AMX, cuBLASLt).
    const double tol = t == GgmlType::F32 ? 1e-5 : 8e-3;
    double worst = 0.0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0.0, scale = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          ref += w.host.ref[static_cast<size_t>(n * K + k)] * x[static_cast<size_t>(i * K + k)];
          scale += std::fabs(w.host.ref[static_cast<size_t>(n * K + k)] * x[static_cast<size_t>(i * K + k)]);
        }
        worst = std::max(worst, std::fabs(alone[static_cast<size_t>(i * N + n)] - ref) / (scale + 1e-30));
      }
    CHECK(worst < tol);
    // Every m: the rows equal their solo runs bit for bit.
    int bad = 0;
    for (int64_t m = 1; m <= M; ++m) {
      backend().gemm(w.view, dx.p, K, m, dy.p, N);
      const auto y = dy.read();
      for (int64_t i = 0; i < m; ++i) bad += !same_bits(&y[static_cast<size_t>(i * N)], &alone[static_cast<size_t>(i * N)], N);
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("backend ops: embed gathers rows of every type exactly as the host decodes them") {
  std::mt19937_64 rng(8);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
    const std::string type_name = ggml_type_name(t);
    CAPTURE(type_name);
    DevWeight table(t, 20, 64, rng);
    const std::vector<int32_t> ids = {3, 0, 19, 3, 7};
    DevBuf<float> out(ids.size() * 64);
    backend().embed(table.view, ids.data(), static_cast<int64_t>(ids.size()), out.p);
    const auto got = out.read();
    int bad = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t c = 0; c < 64; ++c)
        bad += got[i * 64 + static_cast<size_t>(c)] !=
               static_cast<float>(table.host.ref[static_cast<size_t>(ids[i] * 64 + c)]);
    CHECK(bad == 0);
  }
}

TEST_CASE("backend ops: rms_norm, swiglu, add, silu, add3 against float64") {
  std::mt19937_64 rng(9);
  const int32_t n = 72;
  const int64_t rows = 5;
  const auto x = random_floats(static_cast<size_t>(rows * n), rng), gain = random_floats(static_cast<size_t>(n), rng),
             y = random_floats(static_cast<size_t>(rows * n), rng);
  auto close = [](double got, double ref) { return std::fabs(got - ref) <= 2e-6 * (1.0 + std::fabs(ref)); };
  {
    DevBuf<float> dx(x), dg(gain), out(x.size());
    backend().rms_norm(dx.p, dg.p, rows, n, 1e-5f, out.p);
    const auto got = out.read();
    int bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int32_t i = 0; i < n; ++i) ss += static_cast<double>(x[static_cast<size_t>(r * n + i)]) * x[static_cast<size_t>(r * n + i)];
      const double s = 1.0 / std::sqrt(ss / n + 1e-5);
      for (int32_t i = 0; i < n; ++i) {
        const size_t at = static_cast<size_t>(r * n + i);
        bad += !close(got[at], x[at] * s * gain[static_cast<size_t>(i)]);
      }
    }
    CHECK(bad == 0);
  }
  {
    DevBuf<float> g(x), u(y);
    backend().swiglu(g.p, u.p, static_cast<int64_t>(x.size()));
    const auto got = g.read();
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) bad += !close(got[i], x[i] / (1.0 + std::exp(-static_cast<double>(x[i]))) * y[i]);
    CHECK(bad == 0);
  }
  {
    DevBuf<float> a(x), b(y), s(x.size());
    backend().add3(a.p, b.p, s.p, static_cast<int64_t>(x.size()));
    backend().add(a.p, b.p, static_cast<int64_t>(x.size()));
    backend().silu(b.p, static_cast<int64_t>(y.size()));
    const auto sum3 = s.read(), sum = a.read(), si = b.read();
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      bad += sum3[i] != x[i] + y[i];
      bad += sum[i] != x[i] + y[i];
      bad += !close(si[i], y[i] / (1.0 + std::exp(-static_cast<double>(y[i]))));
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("backend ops: add_bias broadcasts one row; rms_norm in place over rows of a head equals out of place") {
  std::mt19937_64 rng(12);
  const int32_t n = 48;
  const int64_t rows = 6;
  const auto x = random_floats(static_cast<size_t>(rows * n), rng), bias = random_floats(static_cast<size_t>(n), rng);
  DevBuf<float> dx(x), db(bias);
  backend().add_bias(dx.p, db.p, rows, n);
  const auto got = dx.read();
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t i = 0; i < n; ++i) {
      const size_t at = static_cast<size_t>(r * n + i);
      bad += got[at] != x[at] + bias[static_cast<size_t>(i)];
    }
  CHECK(bad == 0);
  // Qwen3's per-head norm: rows·heads rows of head_dim, written over the input.
  const int32_t head_dim = 16;
  const auto gain = random_floats(static_cast<size_t>(head_dim), rng);
  DevBuf<float> in(x), out(x.size()), dg(gain);
  backend().rms_norm(in.p, dg.p, rows * n / head_dim, head_dim, 1e-6f, out.p);
  backend().rms_norm(in.p, dg.p, rows * n / head_dim, head_dim, 1e-6f, in.p);
  const auto a = out.read(), b = in.read();
  CHECK(same_bits(a.data(), b.data(), a.size()));
}

TEST_CASE("backend ops: rope with linear scaling and rope_freqs factors (Llama 3.x) against float64") {
  std::mt19937_64 rng(13);
  const int32_t head_dim = 16, heads = 2, rows = 3, half = head_dim / 2;
  StepMeta meta;
  meta.n_rows = rows;
  meta.pos = {0, 5, 3000};
  std::vector<float> factors(static_cast<size_t>(half));
  for (int32_t i = 0; i < half; ++i) factors[static_cast<size_t>(i)] = 1.0f + 4.0f * static_cast<float>(i) / half;
  DevBuf<float> df(factors);
  RopeParams p{RopeLayout::Neox, head_dim, head_dim, 500000.0f, 0.5f, df.p};
  const int64_t ld = heads * head_dim;
  const auto x = random_floats(static_cast<size_t>(rows * ld), rng);
  DevBuf<float> dx(x);
  REQUIRE(backend().begin_step(meta).has_value());
  backend().rope(dx.p, ld, heads, p);
  const auto got = dx.read();
  int bad = 0;
  for (int32_t r = 0; r < rows; ++r)
    for (int32_t h = 0; h < heads; ++h) {
      const float* v = &x[static_cast<size_t>(r * ld + h * head_dim)];
      const float* g = &got[static_cast<size_t>(r * ld + h * head_dim)];
      for (int32_t i = 0; i < half; ++i) {
        const double ang = meta.pos[static_cast<size_t>(r)] * 0.5 * std::pow(500000.0, -2.0 * i / head_dim) /
                           factors[static_cast<size_t>(i)];
        const double ra = v[i] * std::cos(ang) - v[i + half] * std::sin(ang);
        const double rb = v[i] * std::sin(ang) + v[i + half] * std::cos(ang);
        bad += std::fabs(g[i] - ra) > 2e-4 * (1 + std::fabs(ra));
        bad += std::fabs(g[i + half] - rb) > 2e-4 * (1 + std::fabs(rb));
      }
    }
  CHECK(bad == 0);
}

TEST_CASE("backend ops: rope in both layouts at the step's positions against float64") {
  std::mt19937_64 rng(10);
  const int32_t head_dim = 16, heads = 3, rows = 4;
  StepMeta meta;
  meta.n_rows = rows;
  meta.pos = {0, 1, 77, 1023};
  for (RopeLayout layout : {RopeLayout::Adjacent, RopeLayout::Neox}) {
    for (int32_t rope_dims : {16, 8}) {
      CAPTURE(rope_dims);
      const RopeParams p{layout, head_dim, rope_dims, 10000.0f};
      const int64_t ld = heads * head_dim + 4;  // a row stride wider than the heads
      const auto x = random_floats(static_cast<size_t>(rows * ld), rng);
      DevBuf<float> dx(x);
      REQUIRE(backend().begin_step(meta).has_value());
      backend().rope(dx.p, ld, heads, p);
      const auto got = dx.read();
      int bad = 0;
      for (int32_t r = 0; r < rows; ++r)
        for (int32_t h = 0; h < heads; ++h) {
          const float* v = &x[static_cast<size_t>(r * ld + h * head_dim)];
          const float* g = &got[static_cast<size_t>(r * ld + h * head_dim)];
          std::vector<double> ref(v, v + head_dim);
          for (int32_t i = 0; i < rope_dims / 2; ++i) {
            const int32_t a = layout == RopeLayout::Adjacent ? 2 * i : i;
            const int32_t b = layout == RopeLayout::Adjacent ? 2 * i + 1 : i + rope_dims / 2;
            const double ang = meta.pos[static_cast<size_t>(r)] * std::pow(10000.0, -2.0 * i / rope_dims);
            ref[static_cast<size_t>(a)] = v[a] * std::cos(ang) - v[b] * std::sin(ang);
            ref[static_cast<size_t>(b)] = v[a] * std::sin(ang) + v[b] * std::cos(ang);
          }
          for (int32_t d = 0; d < head_dim; ++d) bad += std::fabs(g[d] - ref[static_cast<size_t>(d)]) > 2e-4 * (1 + std::fabs(ref[static_cast<size_t>(d)]));
        }
      CHECK(bad == 0);
      // The padding past the heads is untouched.
      for (int32_t r = 0; r < rows; ++r)
        CHECK(same_bits(&got[static_cast<size_t>(r * ld + heads * head_dim)], &x[static_cast<size_t>(r * ld + heads * head_dim)], 4));
    }
  }
}

TEST_CASE("backend ops: log_softmax and topk (ties to the lowest index)") {
  std::mt19937_64 rng(11);
  const int32_t cols = 300, rows = 3, k = 5;
  auto x = random_floats(static_cast<size_t>(rows * cols), rng);
  x[10] = x[20] = 50.0f;  // a tie at the top of row 0
  DevBuf<float> dx(x);
  std::vector<int32_t> ids(static_cast<size_t>(rows * k));
  std::vector<float> vals(ids.size());
  backend().topk(dx.p, rows, cols, k, ids.data(), vals.data());
  REQUIRE(backend().sync().has_value());
  CHECK(ids[0] == 10);
  CHECK(ids[1] == 20);
  for (int32_t r = 0; r < rows; ++r) {
    std::vector<int32_t> order(static_cast<size_t>(cols));
    std::iota(order.begin(), order.end(), 0);
    const float* row = &x[static_cast<size_t>(r * cols)];
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    for (int32_t j = 0; j < k; ++j) {
      CHECK(ids[static_cast<size_t>(r * k + j)] == order[static_cast<size_t>(j)]);
      CHECK(vals[static_cast<size_t>(r * k + j)] == row[order[static_cast<size_t>(j)]]);
    }
  }
  backend().log_softmax(dx.p, rows, cols);
  const auto got = dx.read();
  int bad = 0;
  for (int32_t r = 0; r < rows; ++r) {
    const float* row = &x[static_cast<size_t>(r * cols)];
    const double mx = *std::max_element(row, row + cols);
    double sum = 0;
    for (int32_t i = 0; i < cols; ++i) sum += std::exp(row[i] - mx);
    for (int32_t i = 0; i < cols; ++i)
      bad += std::fabs(got[static_cast<size_t>(r * cols + i)] - (row[i] - mx - std::log(sum))) > 1e-5;
  }
  CHECK(bad == 0);
}

namespace {

// A step of several sequences with random committed lengths, block tables and visibility tiles.
struct AttnCase {
  static constexpr int32_t kHeads = 4, kKvHeads = 2, kHd = 16, kLayers = 2, kBt = 8, kBlocks = 24;
  KvLayout layout{kLayers, kKvHeads * kHd, kBt};
  StepMeta meta;
  std::vector<float> q, k, v, kv;  // rows × q_dim, rows × kv_dim (twice), the KV storage

  AttnCase(std::mt19937_64& rng, const std::vector<int32_t>& rows_per_seq, const std::vector<int32_t>& kv_lens,
           bool random_tiles) {
    std::vector<int32_t> free_blocks(kBlocks);
    std::iota(free_blocks.begin(), free_blocks.end(), 0);
    std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
    int32_t row = 0;
    for (size_t s = 0; s < rows_per_seq.size(); ++s) {
      SeqTile t;
      t.seq = static_cast<int32_t>(s);
      t.first = static_cast<int32_t>(meta.row_ids.size());
      t.n_rows = rows_per_seq[s];
      t.kv_len = kv_lens[s];
      t.first_block = static_cast<int32_t>(meta.block_ids.size());
      t.n_blocks = (t.kv_len + kBt - 1) / kBt;
      for (int32_t b = 0; b < t.n_blocks; ++b) {
        meta.block_ids.push_back(free_blocks.back());
        free_blocks.pop_back();
      }
      t.bits = static_cast<int64_t>(meta.tile_bits.size());
      t.words = (t.n_rows + 63) / 64;
      meta.tile_bits.resize(meta.tile_bits.size() + static_cast<size_t>(t.n_rows * t.words), 0);
      for (int32_t i = 0; i < t.n_rows; ++i) {
        for (int32_t j = 0; j < t.n_rows; ++j) {
          const bool see = i == j || (random_tiles ? rng() % 2 == 0 : j < i);
          if (see) meta.tile_bits[static_cast<size_t>(t.bits + i * t.words + j / 64)] |= uint64_t{1} << (j % 64);
        }
        meta.row_ids.push_back(row);
        meta.row_tile.push_back(static_cast<int32_t>(s));
        meta.row_local.push_back(i);
        meta.pos.push_back(t.kv_len + i);
        meta.tokens.push_back(0);
        meta.out_slot.push_back(-1);
        ++row;
      }
      meta.max_kv_len = std::max(meta.max_kv_len, t.kv_len);
      meta.tiles.push_back(t);
    }
    meta.n_rows = row;
    meta.kv_capacity = 256;
    q = random_floats(static_cast<size_t>(row * kHeads * kHd), rng);
    k = random_floats(static_cast<size_t>(row * kKvHeads * kHd), rng);
    v = random_floats(static_cast<size_t>(row * kKvHeads * kHd), rng);
    kv = random_floats(static_cast<size_t>(kBlocks) * layout.block_floats(), rng);
  }

  // float64 attention of row r, head h, layer l.
  std::vector<double> reference(int32_t r, int32_t h, int32_t l) const {
    const SeqTile& t = meta.tiles[static_cast<size_t>(meta.row_tile[static_cast<size_t>(r)])];
    const int32_t kvh = h / (kHeads / kKvHeads), kvd = kKvHeads * kHd;
    const float* qr = &q[static_cast<size_t>(r * kHeads * kHd + h * kHd)];
    std::vector<const float*> keys, values;
    for (int32_t p = 0; p < t.kv_len; ++p) {
      const int32_t blk = meta.block_ids[static_cast<size_t>(t.first_block + p / kBt)];
      keys.push_back(&kv[layout.offset(blk, l, 0, p % kBt) + static_cast<size_t>(kvh * kHd)]);
      values.push_back(&kv[layout.offset(blk, l, 1, p % kBt) + static_cast<size_t>(kvh * kHd)]);
    }
    for (int32_t j = 0; j < t.n_rows; ++j)
      if (meta.sees(t, meta.row_local[static_cast<size_t>(r)], j)) {
        const int32_t g = meta.row_ids[static_cast<size_t>(t.first + j)];
        keys.push_back(&k[static_cast<size_t>(g * kvd + kvh * kHd)]);
        values.push_back(&v[static_cast<size_t>(g * kvd + kvh * kHd)]);
      }
    std::vector<double> s(keys.size()), out(kHd, 0.0);
    double mx = -1e300, sum = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      double d = 0;
      for (int32_t e = 0; e < kHd; ++e) d += static_cast<double>(qr[e]) * keys[i][e];
      s[i] = d / std::sqrt(static_cast<double>(kHd));
      mx = std::max(mx, s[i]);
    }
    for (double& x : s) sum += x = std::exp(x - mx);
    for (size_t i = 0; i < keys.size(); ++i)
      for (int32_t e = 0; e < kHd; ++e) out[static_cast<size_t>(e)] += s[i] / sum * values[i][e];
    return out;
  }

  // The backend's output for every row at layer l.
  std::vector<float> run(int32_t l) const {
    DevBuf<float> dq(q), dk(k), dv(v), dkv(kv), out(q.size());
    REQUIRE(backend().begin_step(meta).has_value());
    AttentionArgs a;
    a.layer = l;
    a.n_heads = kHeads, a.n_kv_heads = kKvHeads, a.head_dim = kHd;
    a.q = dq.p, a.k = dk.p, a.v = dv.p, a.out = out.p, a.kv = dkv.p;
    a.layout = layout;
    backend().attention(a);
    return out.read();
  }
};

}  // namespace

TEST_CASE("backend ops: attention over paged KV with random visibility tiles and KV lengths, against float64") {
  std::mt19937_64 rng(12);
  for (bool random_tiles : {false, true}) {
    CAPTURE(random_tiles);
    const AttnCase c(rng, {5, 1, 9, 3}, {0, 17, 40, 8}, random_tiles);
    for (int32_t l = 0; l < AttnCase::kLayers; ++l) {
      const auto got = c.run(l);
      double worst = 0;
      for (int32_t r = 0; r < c.meta.n_rows; ++r)
        for (int32_t h = 0; h < AttnCase::kHeads; ++h) {
          const auto ref = c.reference(r, h, l);
          for (int32_t e = 0; e < AttnCase::kHd; ++e)
            worst = std::max(worst, std::fabs(got[static_cast<size_t>((r * AttnCase::kHeads + h) * AttnCase::kHd + e)] -
                                              ref[static_cast<size_t>(e)]));
        }
      CHECK(worst < 2e-5);
    }
  }
}

TEST_CASE("backend ops: a sequence's attention rows are the same bits alone and batched with others") {
  std::mt19937_64 rng(13);
  const AttnCase both(rng, {6, 4}, {33, 12}, true);
  // The second sequence alone: the same rows, KV and tile.
  AttnCase alone = both;
  alone.meta.clear();
  {
    const SeqTile t0 = both.meta.tiles[1];
    SeqTile t = t0;
    t.first = 0, t.first_block = 0, t.bits = 0;
    alone.meta.n_rows = t.n_rows;
    alone.meta.max_kv_len = t.kv_len;
    alone.meta.tiles = {t};
    for (int32_t i = 0; i < t.n_rows; ++i) {
      alone.meta.row_ids.push_back(i), alone.meta.row_tile.push_back(0), alone.meta.row_local.push_back(i);
      alone.meta.pos.push_back(t.kv_len + i), alone.meta.tokens.push_back(0), alone.meta.out_slot.push_back(-1);
    }
    alone.meta.block_ids.assign(both.meta.block_ids.begin() + t0.first_block,
                                both.meta.block_ids.begin() + t0.first_block + t0.n_blocks);
    alone.meta.tile_bits.assign(both.meta.tile_bits.begin() + t0.bits,
                                both.meta.tile_bits.begin() + t0.bits + t0.n_rows * t0.words);
    const int32_t off = t0.first;  // its rows' q/k/v in the batched call start here
    const size_t qd = AttnCase::kHeads * AttnCase::kHd, kvd = AttnCase::kKvHeads * AttnCase::kHd;
    alone.q.assign(both.q.begin() + static_cast<std::ptrdiff_t>(off * qd), both.q.begin() + static_cast<std::ptrdiff_t>((off + t.n_rows) * qd));
    alone.k.assign(both.k.begin() + static_cast<std::ptrdiff_t>(off * kvd), both.k.begin() + static_cast<std::ptrdiff_t>((off + t.n_rows) * kvd));
    alone.v.assign(both.v.begin() + static_cast<std::ptrdiff_t>(off * kvd), both.v.begin() + static_cast<std::ptrdiff_t>((off + t.n_rows) * kvd));
    alone.meta.kv_capacity = both.meta.kv_capacity;
  }
  const auto batched = both.run(1), solo = alone.run(1);
  const size_t qd = AttnCase::kHeads * AttnCase::kHd;
  CHECK(same_bits(&batched[static_cast<size_t>(both.meta.tiles[1].first) * qd], solo.data(), solo.size()));
}

TEST_CASE("backend ops: kv_commit copies each row's K and V of every layer to its slot exactly") {
  std::mt19937_64 rng(14);
  const KvLayout layout{3, 8, 4};
  const int32_t rows = 6, stride = 7, blocks = 5;
  const auto k = random_floats(static_cast<size_t>(layout.n_layers * stride * layout.kv_dim), rng);
  const auto v = random_floats(k.size(), rng);
  DevBuf<float> dk(k), dv(v), store(static_cast<size_t>(blocks) * layout.block_floats(), MemUse::Kv);
  backend().zero(store.p, store.n * sizeof(float));
  const std::vector<int32_t> src = {4, 0, 5}, slots = {9, 10, 3};  // slots: block * 4 + position
  KvCommitArgs a;
  a.k = dk.p, a.v = dv.p, a.row_stride = stride, a.rows = src.data(), a.slots = slots.data(), a.n = 3;
  a.kv = store.p, a.layout = layout;
  backend().kv_commit(a);
  const auto got = store.read();
  for (size_t t = 0; t < src.size(); ++t)
    for (int32_t l = 0; l < layout.n_layers; ++l) {
      const size_t from = (static_cast<size_t>(l) * stride + static_cast<size_t>(src[t])) * static_cast<size_t>(layout.kv_dim);
      const int32_t blk = slots[t] / layout.block_tokens, in = slots[t] % layout.block_tokens;
      CHECK(same_bits(&got[layout.offset(blk, l, 0, in)], &k[from], static_cast<size_t>(layout.kv_dim)));
      CHECK(same_bits(&got[layout.offset(blk, l, 1, in)], &v[from], static_cast<size_t>(layout.kv_dim)));
    }
  // Nothing else was written.
  size_t nonzero = 0;
  for (float f : got) nonzero += f != 0.0f;
  CHECK(nonzero == src.size() * static_cast<size_t>(layout.n_layers) * 2 * static_cast<size_t>(layout.kv_dim));
  (void)rows;
}

TEST_CASE("backend memory: allocations are charged by use, budgets give a named NOMEM, free gives the bytes back") {
  MemLedger& ledger = backend().ledger();
  const size_t before = ledger.stats(MemUse::Plugin).used;
  auto a = backend().alloc(MemUse::Plugin, 1000);
  REQUIRE(a.has_value());
  CHECK(ledger.stats(MemUse::Plugin).used >= before + 1000);
  ledger.set_budget(MemUse::Plugin, ledger.stats(MemUse::Plugin).used + 100);
  auto b = backend().alloc(MemUse::Plugin, 4096);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code == SPECD_E_NOMEM);
  CHECK(b.error().message.find("plugin budget") != std::string::npos);
  ledger.set_budget(MemUse::Plugin, 0);
  backend().free(*a);
  CHECK(ledger.stats(MemUse::Plugin).used == before);
  backend().free(nullptr);  // ignored
  // zero() and the copies round-trip.
  DevBuf<float> buf(std::vector<float>{1, 2, 3, 4});
  backend().zero(buf.p + 1, 2 * sizeof(float));
  CHECK(buf.read() == std::vector<float>{1, 0, 0, 4});
}

TEST_CASE("device names: parse_device's forms and errors; open_backend says what it chose") {
  CHECK(parse_device("auto")->kind == DeviceChoice::Kind::Auto);
  CHECK(parse_device("cpu")->kind == DeviceChoice::Kind::Cpu);
  CHECK(parse_device("cuda")->index == 0);
  CHECK(parse_device("cuda:3")->index == 3);
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "CPU"}) {
    CAPTURE(bad);
    auto r = parse_device(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == SPECD_E_INVALID_ARG);
    CHECK(r.error().message.find("expected auto, cpu, cuda or cuda:N") != std::string::npos);
  }
  ThreadPool pool(1);
  auto cpu = open_backend(parse_device("cpu").value(), pool, 0);
  REQUIRE(cpu.has_value());
  CHECK(std::string(cpu->backend->name()) == "cpu");
  CHECK(cpu->why == "cpu (asked)");
  if (cuda_devices() == 0) {
    auto a = open_backend(parse_device("auto").value(), pool, 0);
    REQUIRE(a.has_value());
    CHECK(std::string(a->backend->name()) == "cpu");
    CHECK(a->why.find("auto") != std::string::npos);
    auto c = open_backend(parse_device("cuda").value(), pool, size_t{1} << 20);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == (built_with_cuda() ? SPECD_E_INVALID_ARG : SPECD_E_UNSUPPORTED));
    MESSAGE("no GPU here: 'auto' chose the CPU and 'cuda' was refused: " << c.error().message);
  }
  auto far = open_backend(parse_device("cuda:99").value(), pool, size_t{1} << 20);
  REQUIRE_FALSE(far.has_value());
}

TEST_CASE("backend ops: a row's attention is the same bits whether the rows before it are committed or in the call") {
  // Lossless decoding needs it: ar sees its earlier tokens in the KV cache, a verifying decoder sees
  // them as rows of the same call. Both must give every score and sum the same arithmetic.
  std::mt19937_64 rng(15);
  const int32_t P = 21, n = 4;  // committed prefix, then rows r0..r3 (a causal chain)
  AttnCase in_call(rng, {n}, {P}, false);
  // The same positions with r0..r2 committed: their K/V written to the slots after the prefix.
  AttnCase committed = in_call;
  committed.meta.clear();
  SeqTile t = in_call.meta.tiles[0];
  t.n_rows = 1, t.kv_len = P + n - 1, t.n_blocks = (t.kv_len + AttnCase::kBt - 1) / AttnCase::kBt, t.words = 1;
  committed.meta.n_rows = 1;
  committed.meta.max_kv_len = t.kv_len;
  committed.meta.kv_capacity = in_call.meta.kv_capacity;
  committed.meta.tiles = {t};
  committed.meta.row_ids = {0}, committed.meta.row_tile = {0}, committed.meta.row_local = {0};
  committed.meta.pos = {P + n - 1}, committed.meta.tokens = {0}, committed.meta.out_slot = {-1};
  committed.meta.tile_bits = {1};
  // Blocks for the longer prefix: the in-call case's table, then fresh ones.
  committed.meta.block_ids = in_call.meta.block_ids;
  for (int32_t b = static_cast<int32_t>(committed.meta.block_ids.size()); b < t.n_blocks; ++b)
    for (int32_t cand = 0; cand < AttnCase::kBlocks; ++cand)
      if (std::find(committed.meta.block_ids.begin(), committed.meta.block_ids.end(), cand) == committed.meta.block_ids.end()) {
        committed.meta.block_ids.push_back(cand);
        break;
      }
  const size_t kvd = AttnCase::kKvHeads * AttnCase::kHd, qd = AttnCase::kHeads * AttnCase::kHd;
  for (int32_t l = 0; l < AttnCase::kLayers; ++l)
    for (int32_t r = 0; r < n - 1; ++r) {
      const int32_t p = P + r, blk = committed.meta.block_ids[static_cast<size_t>(p / AttnCase::kBt)];
      std::copy_n(&in_call.k[static_cast<size_t>(r) * kvd], kvd, &committed.kv[committed.layout.offset(blk, l, 0, p % AttnCase::kBt)]);
      std::copy_n(&in_call.v[static_cast<size_t>(r) * kvd], kvd, &committed.kv[committed.layout.offset(blk, l, 1, p % AttnCase::kBt)]);
    }
  committed.q.assign(in_call.q.begin() + static_cast<std::ptrdiff_t>((n - 1) * qd), in_call.q.end());
  committed.k.assign(in_call.k.begin() + static_cast<std::ptrdiff_t>((n - 1) * kvd), in_call.k.end());
  committed.v.assign(in_call.v.begin() + static_cast<std::ptrdiff_t>((n - 1) * kvd), in_call.v.end());
  for (int32_t l = 0; l < AttnCase::kLayers; ++l) {
    const auto a = in_call.run(l), b = committed.run(l);
    CHECK(same_bits(&a[static_cast<size_t>(n - 1) * qd], b.data(), qd));
  }
}

TEST_CASE("backend ops: a head's attention is the same bits whatever the size of its GQA group") {
  // The CPU kernel takes a group's query heads together, one vector lane each (up to 16 a pass); a
  // head's arithmetic must not depend on how many heads share its KV head or on its lane.
  if (specd::test::test_device() != "cpu") {
    MESSAGE("skipped: a property of the CPU kernel");
    return;
  }
  std::mt19937_64 rng(16);
  const AttnCase shape(rng, {6, 3}, {13, 0}, true);  // its step metadata only: rows, tiles, blocks
  const int32_t hd = 8, rows = shape.meta.n_rows, bt = AttnCase::kBt;
  const size_t slots = static_cast<size_t>(AttnCase::kBlocks) * bt;
  for (int32_t group : {2, 3, 8, 20}) {
    CAPTURE(group);
    const std::vector<float> q = random_floats(static_cast<size_t>(rows * group * hd), rng);
    const std::vector<float> k = random_floats(static_cast<size_t>(rows * hd), rng), v = random_floats(k.size(), rng);
    const std::vector<float> kv = random_floats(slots * 2 * hd, rng);  // one KV head: [block][K|V][position][hd]
    // heads: 1 (one KV head for the whole group) or `group` (each query head its own copy of it).
    auto run = [&](int32_t kv_heads) {
      const KvLayout layout{1, kv_heads * hd, bt};
      std::vector<float> kk(static_cast<size_t>(rows * kv_heads * hd)), vv(kk.size()), store(AttnCase::kBlocks * layout.block_floats());
      for (int32_t r = 0; r < rows; ++r)
        for (int32_t h = 0; h < kv_heads; ++h) {
          std::copy_n(&k[static_cast<size_t>(r * hd)], hd, &kk[static_cast<size_t>((r * kv_heads + h) * hd)]);
          std::copy_n(&v[static_cast<size_t>(r * hd)], hd, &vv[static_cast<size_t>((r * kv_heads + h) * hd)]);
        }
      for (int32_t b = 0; b < AttnCase::kBlocks; ++b)
        for (int32_t kind = 0; kind < 2; ++kind)
          for (int32_t p = 0; p < bt; ++p)
            for (int32_t h = 0; h < kv_heads; ++h)
              std::copy_n(&kv[(static_cast<size_t>((b * 2 + kind) * bt + p)) * hd], hd, &store[layout.offset(b, 0, kind, p) + static_cast<size_t>(h * hd)]);
      DevBuf<float> dq(q), dk(kk), dv(vv), dkv(store), out(q.size());
      REQUIRE(backend().begin_step(shape.meta).has_value());
      AttentionArgs a;
      a.n_heads = group, a.n_kv_heads = kv_heads, a.head_dim = hd;
      a.q = dq.p, a.k = dk.p, a.v = dv.p, a.out = out.p, a.kv = dkv.p;
      a.layout = layout;
      backend().attention(a);
      return out.read();
    };
    const std::vector<float> shared = run(1), alone = run(group);
    CHECK(same_bits(shared.data(), alone.data(), shared.size()));
  }
}
