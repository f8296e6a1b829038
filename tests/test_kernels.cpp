// CPU kernel tests: conversions, Q8_0, the thread pool, and every ISA path's matmul against float64.
#include <doctest/doctest.h>

#include "kernels/ggml_type.h"
#include "kernels/cpu/matmul.h"
#include "tests/test_weights.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace specd::kernels;
using specd::BlockQ8_0;
using specd::GgmlType;
using specd::test::Weights;
using specd::test::make_weights;
using specd::test::random_floats;
using specd::test::half_to_double;
using specd::test::bf16_to_double;
using specd::test::row_bytes;

// ---- allocation counting: matmul must not allocate in steady state (STYLE.md part 3) ----
namespace {
std::atomic<int64_t> g_news{0};
}
// noinline: inlined into a new-expression's caller, GCC would see malloc'd memory meet `delete`
// and warn (-Wmismatched-new-delete) although the pair is consistent.
__attribute__((noinline)) void* operator new(size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
constexpr bool kSlowBuild = true;  // debug / ASan: smaller products keep the suite under ~30 s
#else
constexpr bool kSlowBuild = false;
#endif

// ---- test data ----

// ---- comparison against float64 ----

struct Case {
  int64_t m, k, n, ldx, ldy;
  std::vector<float> x;
  std::vector<double> ref, scale;  // Σ_k x·w and Σ_k |x·w| per output
};

// The same case (X, strides) with ref and scale recomputed against w.
Case make_case_from(const Weights& w, Case c) {
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < c.k; ++k) {
        const double p = static_cast<double>(c.x[i * c.ldx + k]) * w.ref[j * c.k + k];
        s += p;
        a += std::fabs(p);
      }
      c.ref[i * c.n + j] = s;
      c.scale[i * c.n + j] = a;
    }
  }
  return c;
}

Case make_case(const Weights& w, int64_t m, std::mt19937_64& rng) {
  Case c{m, w.k, w.n, w.k + 3, w.n + 5, {}, {}, {}};
  c.x = random_floats(static_cast<size_t>(m * c.ldx), rng);
  c.ref.assign(m * c.n, 0.0);
  c.scale.assign(m * c.n, 0.0);
  return make_case_from(w, std::move(c));
}

constexpr float kSentinel = -12345.0f;

// Worst |y - ref| / Σ|x·w| over the outputs; NaN if Y's padding columns were written.
double worst_error(const Case& c, const std::vector<float>& y) {
  double worst = 0;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.ldy; ++j) {
      const float v = y[i * c.ldy + j];
      if (j >= c.n) {
        if (v != kSentinel) return NAN;
        continue;
      }
      const double e = std::fabs(v - c.ref[i * c.n + j]) / (c.scale[i * c.n + j] + 1e-30);
      if (!(e <= worst)) worst = e;  // NaN in y propagates
    }
  }
  return worst;
}

std::vector<float> run_matmul(const Weights& w, const Case& c, ThreadPool& pool) {
  std::vector<float> y(c.m * c.ldy, kSentinel);
  matmul(w.view(), c.x.data(), c.ldx, c.m, y.data(), c.ldy, pool);
  return y;
}

// Tolerance relative to Σ|x·w|: f32 accumulation in 8/16 lanes; the bf16 paths (AVX512-BF16, AMX)
// round X to bf16 (unit roundoff 2^-8) and F16 weights too, so up to 2^-8 or 2^-7 per product.
double tolerance(Isa isa, GgmlType t) {
  if (isa != Isa::Amx && isa != Isa::Avx512Bf16) return 2e-6;
  if (t == GgmlType::BF16) return 4e-3;
  return t == GgmlType::F16 ? 8e-3 : 2e-6;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16}) {
    if (isa_supported(i)) v.push_back(i);
  }
  return v;
}

// Restores the default ISA when a test that forces one ends.
struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_isa(saved); }
};

const char* type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::BF16: return "BF16";
    default: return "Q8_0";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("f16 conversions: exhaustive decode, round trip and rounding edges") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    const double ref = half_to_double(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      REQUIRE(std::isnan(f));
      REQUIRE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    REQUIRE(static_cast<double>(f) == ref);
    REQUIRE(std::signbit(f) == ((h & 0x8000) != 0));
    REQUIRE(f32_to_f16(f) == h);  // every half round-trips, subnormals and signed zeros included
  }
  CHECK(f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(f32_to_f16(65519.996f) == 0x7BFF);
  CHECK(f32_to_f16(65520.0f) == 0x7C00);         // tie between 65504 and 2^16 -> even -> Inf
  CHECK(f32_to_f16(1e10f) == 0x7C00);
  CHECK(f32_to_f16(-INFINITY) == 0xFC00);
  CHECK(f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);  // tie -> even (0)
  CHECK(f32_to_f16(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);  // 1.5 units: tie -> even (2)
  CHECK(f32_to_f16(std::ldexp(1.0f, -14)) == 0x0400);
  CHECK(f32_to_f16(std::ldexp(1023.5f, -24)) == 0x0400);  // subnormal rounding up into the normals
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);   // tie -> even
  CHECK(f32_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);   // tie -> even (up)
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  CHECK(f32_to_f16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  const uint16_t qnan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  CHECK((qnan & 0x7C00) == 0x7C00);
  CHECK((qnan & 0x3FF) != 0);
  uint32_t snan_bits = 0x7F800001u;  // payload only in low bits: must not become Inf
  float snan;
  std::memcpy(&snan, &snan_bits, 4);
  CHECK((f32_to_f16(snan) & 0x3FF) != 0);
}

namespace {
__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
}  // namespace

TEST_CASE("f32_to_f16 matches the F16C instruction over a sweep of float bit patterns") {
  if (!isa_supported(Isa::Avx2)) {
    MESSAGE("skipped: no F16C");
    return;
  }
  const uint32_t step = kSlowBuild ? 65521 : 4099;
  int64_t mismatches = 0;
  for (uint64_t u = 0; u < (1ull << 32); u += step) {
    float f;
    const uint32_t bits = static_cast<uint32_t>(u);
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    if (f32_to_f16(f) != hw_f32_to_f16(f)) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("bf16 conversions: round to nearest even, NaN, Inf, subnormals") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    uint32_t u;
    std::memcpy(&u, &f, 4);
    REQUIRE(u == h << 16);
    if (!std::isnan(f)) REQUIRE(f32_to_bf16(f) == h);
  }
  auto from_bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  CHECK(f32_to_bf16(from_bits(0x3F808000u)) == 0x3F80);  // tie, even stays
  CHECK(f32_to_bf16(from_bits(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
  CHECK(f32_to_bf16(from_bits(0x3F808001u)) == 0x3F81);
  CHECK(f32_to_bf16(from_bits(0x7F7FFFFFu)) == 0x7F80);  // FLT_MAX rounds to Inf
  CHECK(f32_to_bf16(from_bits(0x00008000u)) == 0x0000);  // subnormal tie -> even
  CHECK(f32_to_bf16(from_bits(0x00018000u)) == 0x0002);
  CHECK(f32_to_bf16(from_bits(0x80000001u)) == 0x8000);
  CHECK(f32_to_bf16(from_bits(0xFF800000u)) == 0xFF80);
  const uint16_t n = f32_to_bf16(from_bits(0x7F800001u));  // sNaN with a low payload stays NaN
  CHECK((n & 0x7F80) == 0x7F80);
  CHECK((n & 0x7F) != 0);
  // Against a double-precision nearest-even reference on random patterns.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng());
    const float f = from_bits(u);
    if (std::isnan(f) || std::isinf(f)) continue;
    const uint16_t lo = static_cast<uint16_t>(u >> 16);
    const uint16_t hi = static_cast<uint16_t>(lo + 1);
    // IEEE rounding treats Inf as the next step past the largest finite value, 2^128.
    auto value = [](uint16_t h) { return (h & 0x7FFF) == 0x7F80 ? std::copysign(std::ldexp(1.0, 128), bf16_to_double(h)) : bf16_to_double(h); };
    const double dl = std::fabs(value(lo) - f), dh = std::fabs(value(hi) - f);
    const uint16_t want = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
    REQUIRE(f32_to_bf16(f) == want);
  }
}

TEST_CASE("quantize_q8_0 matches llama.cpp's reference formula bit for bit") {
  std::mt19937_64 rng(11);
  const int64_t n = 32 * 64;
  std::vector<float> x = random_floats(n, rng);
  for (int j = 0; j < 32; ++j) x[j] = 0.0f;                  // all-zero block: d = 0, q = 0
  x[40] = 1000.0f;                                           // one outlier dominates its block
  x[70] = -3.0f;                                             // negative amax
  for (int j = 96; j < 128; ++j) x[j] = (j - 112) * 0.5f;     // exact .5 products: roundf ties away
  for (int j = 128; j < 160; ++j) x[j] *= 1e-30f;            // tiny d (an f16 subnormal or zero)
  std::vector<BlockQ8_0> got(n / 32);
  quantize_q8_0(x.data(), n, got.data());
  for (int64_t b = 0; b < n / 32; ++b) {
    // ggml-quants.c quantize_row_q8_0_ref, restated.
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    INFO("block " << b);
    CHECK(got[b].d == f32_to_f16(d));
    for (int j = 0; j < 32; ++j) REQUIRE(got[b].qs[j] == static_cast<int8_t>(roundf(x[b * 32 + j] * id)));
  }
  CHECK(got[0].d == 0);
}

TEST_CASE("weight_row_to_f32 decodes every type") {
  std::mt19937_64 rng(3);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
    const Weights w = make_weights(t, 5, 96, rng);
    std::vector<float> row(96);
    for (int64_t j = 0; j < 5; ++j) {
      weight_row_to_f32(w.view(), j, row.data());
      for (int64_t k = 0; k < 96; ++k) REQUIRE(static_cast<double>(row[k]) == w.ref[j * 96 + k]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("ThreadPool runs every task exactly once") {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    CHECK(pool.size() == threads);
    std::vector<std::atomic<int>> hits(300);
    std::atomic<int> bad_worker{0};
    const int runs = kSlowBuild ? 300 : 2000;
    for (int r = 0; r < runs; ++r) {
      const int64_t n = r % 97 + (r % 5 == 0 ? 200 : 0);
      for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
      auto fn = [&](int64_t t, int worker) {
        hits[t].fetch_add(1, std::memory_order_relaxed);
        if (worker < 0 || worker >= threads) bad_worker.fetch_add(1);
      };
      pool.run(n, fn);
      for (int64_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
      if (r % 400 == 7) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers go to sleep
    }
    CHECK(bad_worker.load() == 0);
  }
}

TEST_CASE("ThreadPool: results written by workers are visible after run, across sleeps") {
  ThreadPool pool(2);
  std::vector<int64_t> out(64);  // plain memory: run() must order the workers' writes before it returns
  for (int r = 0; r < 50; ++r) {
    auto fn = [&](int64_t t, int) { out[t] = t * r; };
    pool.run(64, fn);
    for (int64_t t = 0; t < 64; ++t) REQUIRE(out[t] == t * r);
    if (r % 10 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

TEST_CASE("ThreadPool: many pools created and destroyed, some never used") {
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(2 + i % 3);
    if (i % 2) {
      int64_t sum = 0;
      std::atomic<int64_t> acc{0};
      auto fn = [&](int64_t t, int) { acc.fetch_add(t); };
      pool.run(10, fn);
      sum = acc.load();
      CHECK(sum == 45);
    }
  }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("ISA selection") {
  CHECK(isa_supported(Isa::Scalar));
  CHECK(isa_supported(active_isa()));
  IsaGuard guard;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx}) {
    INFO(isa_name(i));
    if (isa_supported(i)) {
      CHECK(set_isa(i));
      CHECK(active_isa() == i);
    } else {
      const Isa before = active_isa();
      CHECK_FALSE(set_isa(i));
      CHECK(active_isa() == before);
    }
  }
  MESSAGE("kernels: active ISA " << std::string(isa_name(guard.saved)));
}

namespace {

// Every (m, K, N) of the grid with m·K·N under the budget, for every type and supported path,
// with 1 and 2 threads. Also: both pools give identical bits, and each row equals that row alone.
void check_grid(const std::vector<Isa>& isas) {
  const int64_t budget = kSlowBuild ? 1'000'000 : 24'000'000;
  const int64_t ms[] = {1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64, 130};
  const int64_t ks[] = {8, 64, 172, 256, 2048};
  const int64_t ns[] = {1, 5, 64, 172, 512};
  ThreadPool pool1(1), pool2(2);
  IsaGuard guard;
  std::mt19937_64 rng(42);
  int64_t cases = 0;
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
    for (int64_t k : ks) {
      if (t == GgmlType::Q8_0 && k % 32) continue;
      for (int64_t n : ns) {
        const Weights w = make_weights(t, n, k, rng);
        for (int64_t m : ms) {
          if (m * k * n > budget) continue;
          const Case c = make_case(w, m, rng);
          for (Isa isa : isas) {
            REQUIRE(set_isa(isa));
            INFO(isa_name(isa) << " " << type_name(t) << " m=" << m << " K=" << k << " N=" << n);
            const std::vector<float> y1 = run_matmul(w, c, pool1);
            const std::vector<float> y2 = run_matmul(w, c, pool2);
            const double err = worst_error(c, y1);
            CHECK(err <= tolerance(isa, t));
            CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0);
            // Row m-1 alone (a 1-row product) gives the same bits as inside the batch.
            std::vector<float> last(c.n);
            matmul_range(w.view(), c.x.data() + (m - 1) * c.ldx, c.ldx, 1, last.data(), c.n, 0, c.n);
            CHECK(std::memcmp(last.data(), y1.data() + (m - 1) * c.ldy, c.n * sizeof(float)) == 0);
            ++cases;
          }
        }
      }
    }
  }
  MESSAGE("matmul grid: " << cases << " (isa, type, m, K, N) cases");
}

}  // namespace

TEST_CASE("matmul: every available ISA path against float64, all types, m/K/N grid, 1 and 2 threads") {
  check_grid(available_isas());
}

TEST_CASE("matmul: AMX path") {
  if (!isa_supported(Isa::Amx)) {
    MESSAGE("skipped: no AMX (CPUID amx_bf16 absent or the kernel refused the tile permission)");
    return;
  }
  check_grid({Isa::Amx});
}

TEST_CASE("matmul: AMX tile layouts via the emulated tile unit") {
  if (!isa_supported(Isa::Avx512)) {
    MESSAGE("skipped: the AMX emulation needs AVX-512");
    return;
  }
  std::mt19937_64 rng(5);
  const int64_t ms[] = {1, 3, 16, 17, 64, 70};
  const int64_t shapes[][2] = {{64, 48}, {172, 37}, {96, 16}, {40, 5}};  // {K, N}: tails in K and N
  for (GgmlType t : {GgmlType::BF16, GgmlType::F16}) {
    for (const auto& s : shapes) {
      const Weights w = make_weights(t, s[1], s[0], rng);
      for (int64_t m : ms) {
        if (kSlowBuild && m * s[0] * s[1] > 60000) continue;
        const Case c = make_case(w, m, rng);
        INFO(type_name(t) << " m=" << m << " K=" << c.k << " N=" << c.n);
        std::vector<float> y(c.m * c.ldy, kSentinel);
        // Two ranges with a split inside a 16-row block, as a caller fusing its own regions might.
        const int64_t split = c.n / 2 + 3 < c.n ? c.n / 2 + 3 : c.n;
        matmul_range_amx_emulated(w.view(), c.x.data(), c.ldx, m, y.data(), c.ldy, 0, split);
        matmul_range_amx_emulated(w.view(), c.x.data(), c.ldx, m, y.data(), c.ldy, split, c.n);
        CHECK(worst_error(c, y) <= tolerance(Isa::Amx, t));
        std::vector<float> last(c.n);
        matmul_range_amx_emulated(w.view(), c.x.data() + (m - 1) * c.ldx, c.ldx, 1, last.data(), c.n, 0, c.n);
        CHECK(std::memcmp(last.data(), y.data() + (m - 1) * c.ldy, c.n * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("matmul: AVX512-BF16 path is exact f32 accumulation of bf16-rounded X and weights") {
  if (!isa_supported(Isa::Avx512Bf16)) {
    MESSAGE("skipped: no AVX512-BF16 on this CPU");
    return;
  }
  IsaGuard guard;
  REQUIRE(set_isa(Isa::Avx512Bf16));
  std::mt19937_64 rng(11);
  ThreadPool pool(2);
  const auto bf16_round = [](double v) { return bf16_to_double(f32_to_bf16(static_cast<float>(v))); };
  for (GgmlType t : {GgmlType::BF16, GgmlType::F16}) {
    for (int64_t k : {8, 31, 64, 100, 2048}) {  // tails inside the first and a later 32-element step
      Weights w = make_weights(t, 37, k, rng);
      Weights rounded = w;
      for (double& v : rounded.ref) v = bf16_round(v);  // F16 weights are rounded to bf16 on load
      for (int64_t m : {1, 6, 13, 40}) {
        INFO(type_name(t) << " K=" << k << " m=" << m);
        const Case c = make_case(w, m, rng);
        Case exact = c;
        for (float& v : exact.x) v = static_cast<float>(bf16_round(v));
        exact = make_case_from(rounded, std::move(exact));
        const std::vector<float> y = run_matmul(w, c, pool);
        CHECK(worst_error(exact, y) <= 2e-6);
        CHECK(worst_error(c, y) > 1e-5);  // X really was rounded (this is not the f32 path)
      }
    }
  }
}

TEST_CASE("matmul_range over odd sub-ranges equals the full product") {
  std::mt19937_64 rng(9);
  IsaGuard guard;
  for (Isa isa : available_isas()) {
    REQUIRE(set_isa(isa));
    for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
      const Weights w = make_weights(t, 75, 96, rng);
      const Case c = make_case(w, 9, rng);
      ThreadPool pool(1);
      const std::vector<float> full = run_matmul(w, c, pool);
      std::vector<float> y(c.m * c.ldy, kSentinel);
      for (int64_t n0 : {0, 3, 17, 40, 41}) {
        const int64_t n1 = n0 == 41 ? 75 : n0 == 0 ? 3 : n0 == 3 ? 17 : n0 == 17 ? 40 : 41;
        matmul_range(w.view(), c.x.data(), c.ldx, c.m, y.data(), c.ldy, n0, n1);
      }
      INFO(isa_name(isa) << " " << type_name(t));
      CHECK(std::memcmp(full.data(), y.data(), y.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("matmul: F32 weights keep float64 agreement near 1e-6 (relative L2) at 1B-model widths") {
  std::mt19937_64 rng(13);
  IsaGuard guard;
  const int64_t k = kSlowBuild ? 2048 : 5632, n = kSlowBuild ? 16 : 128;
  const Weights w = make_weights(GgmlType::F32, n, k, rng);
  const Case c = make_case(w, 3, rng);
  ThreadPool pool(2);
  for (Isa isa : available_isas()) {
    REQUIRE(set_isa(isa));
    const std::vector<float> y = run_matmul(w, c, pool);
    double num = 0, den = 0;
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < c.n; ++j) {
        const double d = y[i * c.ldy + j] - c.ref[i * c.n + j];
        num += d * d;
        den += c.ref[i * c.n + j] * c.ref[i * c.n + j];
      }
    }
    INFO(isa_name(isa));
    CHECK(std::sqrt(num / den) < 1e-6);
  }
}

TEST_CASE("matmul allocates nothing in steady state") {
  std::mt19937_64 rng(21);
  const Weights w = make_weights(GgmlType::F16, 256, 512, rng);
  const Case c = make_case(w, 8, rng);
  ThreadPool pool(2);
  std::vector<float> y(c.m * c.ldy);
  matmul(w.view(), c.x.data(), c.ldx, c.m, y.data(), c.ldy, pool);  // warm-up: per-thread scratch
  const int64_t before = g_news.load();
  for (int i = 0; i < 50; ++i) matmul(w.view(), c.x.data(), c.ldx, c.m, y.data(), c.ldy, pool);
  CHECK(g_news.load() - before == 0);
}

TEST_CASE("tiny products (stories260K size) are correct and cheap") {
  // Below ~32K multiply-adds matmul stays on the calling thread; the time shows no wake-up cost.
  std::mt19937_64 rng(17);
  const Weights w = make_weights(GgmlType::F32, 64, 64, rng);
  const Case c = make_case(w, 1, rng);
  ThreadPool pool(2);
  std::vector<float> y(c.ldy, kSentinel);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) matmul(w.view(), c.x.data(), c.ldx, 1, y.data(), c.ldy, pool);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 1000;
  CHECK(worst_error(c, y) <= 2e-6);
  MESSAGE("64x64 matvec: " << us << " us per call");
}
