// Q4_0/Q4_K/Q5_K/Q6_K: block layouts, quantizers, dequantization, and the quantized-activation matmul
// on every available ISA path (against float64, across paths, across batch sizes and thread counts).
#include <doctest/doctest.h>

#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/quant_k.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/ggml_type.h"
#include "tests/test_support.h"
#include "tests/test_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace specd::kernels;
using specd::GgmlType;
using specd::test::half_to_double;

namespace {

constexpr GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<float> normal_floats(size_t n, std::mt19937_64& rng, float sd = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(n);
  for (auto& f : v) f = dist(rng);
  return v;
}

// Independent decoder, written from llama.cpp's dequantize_row_* loops (not from quant_k.cpp).
std::vector<double> decode(GgmlType t, const uint8_t* p, int64_t n) {
  std::vector<double> y;
  auto h = [](const uint8_t* q) { return half_to_double(static_cast<uint16_t>(q[0] | (q[1] << 8))); };
  auto scale_min = [](int j, const uint8_t* q, int* d, int* m) {
    if (j < 4) {
      *d = q[j] & 63;
      *m = q[j + 4] & 63;
    } else {
      *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
      *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
  };
  if (t == GgmlType::Q4_0) {
    for (int64_t b = 0; b < n / 32; ++b, p += 18) {
      std::vector<double> blk(32);
      for (int j = 0; j < 16; ++j) {
        blk[j] = ((p[2 + j] & 0xF) - 8) * h(p);
        blk[j + 16] = ((p[2 + j] >> 4) - 8) * h(p);
      }
      y.insert(y.end(), blk.begin(), blk.end());
    }
    return y;
  }
  for (int64_t b = 0; b < n / 256; ++b) {
    if (t == GgmlType::Q6_K) {
      const uint8_t *ql = p, *qh = p + 128;
      const auto* sc = reinterpret_cast<const int8_t*>(p + 192);
      const double d = h(p + 208);
      std::vector<double> blk(256);
      for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; ++l) {
          const int is = l / 16;
          blk[128 * half + l] = d * sc[is] * (((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
          blk[128 * half + l + 32] = d * sc[is + 2] * (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
          blk[128 * half + l + 64] = d * sc[is + 4] * (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
          blk[128 * half + l + 96] = d * sc[is + 6] * (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
      }
      y.insert(y.end(), blk.begin(), blk.end());
      p += 210;
      continue;
    }
    const bool five = t == GgmlType::Q5_K;
    const double d = h(p), dmin = h(p + 2);
    const uint8_t* scales = p + 4;
    const uint8_t* qh = p + 16;
    const uint8_t* q = p + (five ? 48 : 16);
    int u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32, u1 <<= 2, u2 <<= 2) {
      int sc, m;
      scale_min(is, scales, &sc, &m);
      const double d1 = d * sc, m1 = dmin * m;
      scale_min(is + 1, scales, &sc, &m);
      const double d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) y.push_back(d1 * ((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1);
      for (int l = 0; l < 32; ++l) y.push_back(d2 * ((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2);
    }
    p += five ? 176 : 144;
  }
  return y;
}

struct QWeights {
  GgmlType type;
  int64_t n, k;
  std::vector<uint8_t> bytes;
  std::vector<double> ref;  // decode() of the stored rows
  WeightView view() const { return {type, bytes.data(), n, k, specd::ggml_row_bytes(type, k)}; }
};

QWeights make_qweights(GgmlType t, int64_t n, int64_t k, std::mt19937_64& rng) {
  QWeights w{t, n, k, std::vector<uint8_t>(specd::ggml_row_bytes(t, k) * static_cast<size_t>(n)), {}};
  for (int64_t j = 0; j < n; ++j) {
    const std::vector<float> row = normal_floats(static_cast<size_t>(k), rng);
    uint8_t* dst = w.bytes.data() + j * specd::ggml_row_bytes(t, k);
    REQUIRE(quantize_row(t, row.data(), k, dst));
    const std::vector<double> r = decode(t, dst, k);
    w.ref.insert(w.ref.end(), r.begin(), r.end());
  }
  return w;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (isa_supported(i)) v.push_back(i);
  }
  return v;
}

struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_isa(saved); }
};

// The activations as the kernels see them: each row quantized (Q8_0 or Q8_K), decoded to double.
std::vector<double> quantized_x(GgmlType t, const std::vector<float>& x, int64_t m, int64_t k, int64_t ldx) {
  std::vector<double> out(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x.data() + i * ldx;
    if (t == GgmlType::Q4_0) {
      std::vector<specd::BlockQ8_0> q(static_cast<size_t>(k / 32));
      quantize_q8_0(xi, k, q.data());
      for (int64_t e = 0; e < k; ++e) out[i * k + e] = half_to_double(q[e / 32].d) * q[e / 32].qs[e % 32];
    } else {
      std::vector<specd::BlockQ8_K> q(static_cast<size_t>(k / 256));
      quantize_q8_K(xi, k, q.data());
      for (int64_t e = 0; e < k; ++e) out[i * k + e] = static_cast<double>(q[e / 256].d) * q[e / 256].qs[e % 256];
    }
  }
  return out;
}

}  // namespace

TEST_CASE("K types: GGUF numbers, names, block sizes") {
  struct Row { GgmlType t; uint32_t num; const char* name; int64_t elems; size_t bytes; };
  for (const Row& r : {Row{GgmlType::Q4_0, 2, "Q4_0", 32, 18}, Row{GgmlType::Q4_K, 12, "Q4_K", 256, 144},
                       Row{GgmlType::Q5_K, 13, "Q5_K", 256, 176}, Row{GgmlType::Q6_K, 14, "Q6_K", 256, 210}}) {
    INFO(r.name);
    CHECK(static_cast<uint32_t>(r.t) == r.num);
    CHECK(specd::ggml_type_supported(r.num));
    CHECK(std::string(specd::ggml_type_name(r.t)) == r.name);
    GgmlType parsed = GgmlType::F32;
    std::string lower = r.name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK(specd::ggml_type_from_name(lower, &parsed));
    CHECK(parsed == r.t);
    CHECK(specd::ggml_block_elems(r.t) == r.elems);
    CHECK(specd::ggml_block_bytes(r.t) == r.bytes);
    CHECK(specd::ggml_row_bytes(r.t, 4 * r.elems) == 4 * r.bytes);
    CHECK(specd::ggml_type_quantized_act(r.t));
  }
  CHECK_FALSE(specd::ggml_type_quantized_act(GgmlType::Q8_0));
  CHECK_FALSE(specd::ggml_type_supported(3));   // Q4_1: not supported
  CHECK_FALSE(specd::ggml_type_supported(11));  // Q3_K
}

TEST_CASE("quantize_row: round trip error per type, dequantize_row and weight_row_to_f32 agree with an independent decoder") {
  std::mt19937_64 rng(7);
  const int64_t k = 4096;
  const std::vector<float> x = normal_floats(k, rng);
  // Relative RMS error bounds for N(0, 1) rows: measured 0.084, 0.072, 0.036, 0.018, with some headroom.
  const double bound[] = {0.10, 0.085, 0.045, 0.022};
  int idx = 0;
  for (GgmlType t : kTypes) {
    INFO(std::string(specd::ggml_type_name(t)));
    std::vector<uint8_t> q(specd::ggml_row_bytes(t, k));
    REQUIRE(quantize_row(t, x.data(), k, q.data()));
    const std::vector<double> ref = decode(t, q.data(), k);
    std::vector<float> deq(k), row(k);
    dequantize_row(t, q.data(), k, deq.data());
    weight_row_to_f32(WeightView{t, q.data(), 1, k, q.size()}, 0, row.data());
    double e2 = 0, x2 = 0;
    for (int64_t i = 0; i < k; ++i) {
      REQUIRE(static_cast<double>(deq[i]) == doctest::Approx(ref[i]).epsilon(1e-6));
      REQUIRE(row[i] == deq[i]);
      e2 += (ref[i] - x[i]) * (ref[i] - x[i]);
      x2 += static_cast<double>(x[i]) * x[i];
    }
    const double rel = std::sqrt(e2 / x2);
    MESSAGE(std::string(specd::ggml_type_name(t)) << " round-trip relative RMS error " << rel);
    CHECK(rel < bound[idx++]);
  }
  // Zero rows stay zero; other types are refused by quantize_row.
  std::vector<float> zeros(512, 0.0f);
  for (GgmlType t : kTypes) {
    std::vector<uint8_t> q(specd::ggml_row_bytes(t, 512), 0xAB);
    REQUIRE(quantize_row(t, zeros.data(), 512, q.data()));
    std::vector<float> deq(512, 1.0f);
    dequantize_row(t, q.data(), 512, deq.data());
    for (float v : deq) CHECK(v == 0.0f);
  }
  std::vector<uint8_t> q8(specd::ggml_row_bytes(GgmlType::Q8_0, 512));
  CHECK(quantize_row(GgmlType::Q8_0, zeros.data(), 512, q8.data()));
  float sink = 0;
  CHECK_FALSE(quantize_row(GgmlType::F32, zeros.data(), 1, &sink));
}

TEST_CASE("quantize_q8_K: llama.cpp's formula, group sums") {
  std::mt19937_64 rng(3);
  std::vector<float> x = normal_floats(512, rng);
  x[300] = -9.0f;  // block 1's largest magnitude: llama.cpp maps it to -127 (iscale = -127 / max, d = 1 / iscale)
  std::vector<specd::BlockQ8_K> q(2);
  quantize_q8_K(x.data(), 512, q.data());
  CHECK(q[1].qs[300 - 256] == -127);
  CHECK(q[1].d == doctest::Approx(9.0 / 127.0).epsilon(1e-6));
  for (const auto& b : q) {
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += b.qs[16 * g + l];
      CHECK(b.bsums[g] == s);
    }
  }
  for (int i = 0; i < 512; ++i) {
    const auto& b = q[static_cast<size_t>(i / 256)];
    CHECK(std::fabs(b.d * b.qs[i % 256] - x[i]) <= std::fabs(b.d) * 0.5f + 1e-6f);
  }
  std::vector<float> zeros(256, 0.0f);
  quantize_q8_K(zeros.data(), 256, q.data());
  CHECK(q[0].d == 0.0f);
}

namespace {

// Y for an (m x k) X against w with the active path; padding columns of Y must stay untouched.
std::vector<float> run(const QWeights& w, const std::vector<float>& x, int64_t m, int64_t ldx, int64_t ldy,
                       ThreadPool& pool) {
  std::vector<float> y(static_cast<size_t>(m * ldy), -12345.0f);
  matmul(w.view(), x.data(), ldx, m, y.data(), ldy, pool);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = w.n; j < ldy; ++j) REQUIRE(y[i * ldy + j] == -12345.0f);
  }
  return y;
}

}  // namespace

TEST_CASE("K-type matmul: every path against float64, bit-identical across paths, batch sizes and threads") {
  IsaGuard guard;
  ThreadPool pool1(1), pool2(2);
  std::mt19937_64 rng(11);
  const std::vector<Isa> isas = available_isas();
  MESSAGE("K-type matmul paths: " << isas.size() << " (AVX-512 VNNI: " << cpu_features().avx512_vnni << ")");
  struct Shape { int64_t k, n; };
  int64_t cases = 0;
  for (GgmlType t : kTypes) {
    double type_worst_q = 0, type_worst_f = 0;
    // Odd N everywhere; for Q4_0 also K that is an odd number of blocks. K = 2560 (10 K blocks) makes
    // the AVX-512 path split a row's blocks into several chunks from m = 4 on, K = 8448 (33) at m = 1.
    const Shape shapes[] = {{256, 1}, {512, 17}, {768, 5}, {t == GgmlType::Q4_0 ? 96 : 1024, 33}, {2560, 3}, {8448, 19}};
    for (const Shape& s : shapes) {
      const QWeights w = make_qweights(t, s.n, s.k, rng);
      const int64_t m = 33, ldx = s.k + 3, ldy = s.n + 2;
      const std::vector<float> x = normal_floats(static_cast<size_t>(m * ldx), rng);
      const std::vector<double> xq = quantized_x(t, x, m, s.k, ldx);
      std::vector<float> first;  // the first path's Y: every other path must give the same bits
      for (Isa isa : isas) {
        REQUIRE(set_isa(isa));
        INFO(std::string(isa_name(isa)) << " " << std::string(specd::ggml_type_name(t)) << " K=" << s.k << " N=" << s.n);
        const std::vector<float> y = run(w, x, m, ldx, ldy, pool1);
        CHECK(run(w, x, m, ldx, ldy, pool2) == y);
        if (first.empty()) first = y;
        CHECK(y == first);
        double worst_q = 0, worst_f = 0;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < s.n; ++j) {
            double exact = 0, vs_f32 = 0, scale = 0;
            for (int64_t e = 0; e < s.k; ++e) {
              const double wv = w.ref[j * s.k + e];
              exact += wv * xq[i * s.k + e];
              vs_f32 += wv * x[i * ldx + e];
              scale += std::fabs(wv * x[i * ldx + e]);
            }
            const double yv = y[i * ldy + j];
            worst_q = std::max(worst_q, std::fabs(yv - exact) / scale);
            worst_f = std::max(worst_f, std::fabs(yv - vs_f32) / scale);
          }
        }
        // Against the quantized X the products are exact integers: what is left is f32 rounding of
        // the per-block scale products and their sum (~K/block roundings of 2^-24).
        CHECK(worst_q < 1e-6);  // measured <= 5e-8
        // Against the f32 X: the activation quantization (8 bits per value) on top.
        CHECK(worst_f < 1e-2);  // measured <= 3e-3
        type_worst_q = std::max(type_worst_q, worst_q);
        type_worst_f = std::max(type_worst_f, worst_f);
        // Batch invariance: each row alone (m = 1), and every prefix batch, give the same bits.
        for (int64_t mm = 1; mm <= m; mm += (mm < 8 ? 1 : 7)) {
          std::vector<float> part(static_cast<size_t>(mm * ldy), -12345.0f);
          matmul(w.view(), x.data() + (m - mm) * ldx, ldx, mm, part.data(), ldy, pool2);
          for (int64_t i = 0; i < mm; ++i) {
            REQUIRE(std::memcmp(part.data() + i * ldy, y.data() + (m - mm + i) * ldy, sizeof(float) * s.n) == 0);
          }
        }
        for (int64_t i = 0; i < m; ++i) {
          std::vector<float> one(static_cast<size_t>(s.n));
          matmul_range(w.view(), x.data() + i * ldx, ldx, 1, one.data(), s.n, 0, s.n);
          REQUIRE(std::memcmp(one.data(), y.data() + i * ldy, sizeof(float) * s.n) == 0);
        }
        ++cases;
      }
    }
    MESSAGE(std::string(specd::ggml_type_name(t)) << ": worst |y - ref| / sum|x w|: " << type_worst_q
            << " against the quantized X, " << type_worst_f << " against the f32 X");
  }
  MESSAGE("K-type matmul cases: " << cases);
}

TEST_CASE("K-type matmul: extreme blocks (all-zero rows, saturated levels, a huge activation)") {
  IsaGuard guard;
  ThreadPool pool(2);
  std::mt19937_64 rng(5);
  const int64_t k = 512, n = 4;
  for (GgmlType t : kTypes) {
    QWeights w = make_qweights(t, n, k, rng);
    // Row 0 all-zero weights; row 1 a constant (every level at one end).
    std::vector<float> zero_row(k, 0.0f), const_row(k, 3.5f);
    REQUIRE(quantize_row(t, zero_row.data(), k, w.bytes.data()));
    REQUIRE(quantize_row(t, const_row.data(), k, w.bytes.data() + specd::ggml_row_bytes(t, k)));
    std::vector<float> x = normal_floats(2 * k, rng);
    x[7] = 1e4f;  // one activation dominates its block: the others quantize to ~0
    std::fill(x.begin() + k, x.end(), 0.0f);  // second X row: all zero
    std::vector<float> first;
    for (Isa isa : available_isas()) {
      REQUIRE(set_isa(isa));
      std::vector<float> y(2 * n);
      matmul(w.view(), x.data(), k, 2, y.data(), n, pool);
      INFO(std::string(isa_name(isa)) << " " << std::string(specd::ggml_type_name(t)));
      CHECK(y[0] == 0.0f);
      for (int64_t j = 0; j < n; ++j) CHECK(y[n + j] == 0.0f);
      if (first.empty()) first = y;
      CHECK(y == first);
    }
    std::vector<float> deq(k);
    dequantize_row(t, w.bytes.data() + specd::ggml_row_bytes(t, k), k, deq.data());
    double want = 0;
    for (int64_t e = 0; e < k; ++e) want += deq[e] * static_cast<double>(x[e]);
    CHECK(first[1] == doctest::Approx(want).epsilon(2e-2));
  }
}

TEST_CASE("K types: rows that are not whole 256-element blocks are refused by the GGUF writer and reader") {
  const std::vector<uint8_t> data(specd::ggml_row_bytes(GgmlType::F32, 320) * 2);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    specd::engine::GgufWriter w;
    // 320 = 10 Q4_0 blocks but 1.25 K blocks.
    const std::vector<uint8_t> bytes(10 * specd::ggml_block_bytes(t));
    auto st = w.add_tensor("w", t, {320, 2}, bytes);
    REQUIRE_FALSE(st);
    CHECK(st.error().message.find("row size not a multiple of block size") != std::string::npos);
  }
  // The reader: an F32 [320 x 2] tensor whose type field is patched to Q4_K.
  specd::engine::GgufWriter w;
  w.set_string("general.architecture", "llama");
  REQUIRE(w.add_tensor("wtensor", GgmlType::F32, {320, 2}, data));
  const std::string path = specd::test::temp_dir() + "/bad_q4k.gguf";
  REQUIRE(w.write(path));
  std::vector<uint8_t> file = specd::test::read_file(path);
  const std::string name = "wtensor";
  const auto it = std::search(file.begin(), file.end(), name.begin(), name.end());
  REQUIRE(it != file.end());
  const size_t type_at = static_cast<size_t>(it - file.begin()) + name.size() + 4 + 2 * 8;  // n_dims, ne[0..1]
  REQUIRE(file[type_at] == 0);
  file[type_at] = static_cast<uint8_t>(GgmlType::Q4_K);
  specd::test::write_file(path, file);
  auto f = specd::engine::GgufFile::open(path);
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("row size not a multiple of block size") != std::string::npos);
}
