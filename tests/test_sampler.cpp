// Sampler and Rng: filters, determinism, and that draws follow the filtered law (chi-square).
#include "engine/sampler.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace specd::engine;

namespace {
std::vector<float> softmax(const std::vector<float>& l, float t) {
  std::vector<float> p(l.size());
  float mx = *std::max_element(l.begin(), l.end());
  double s = 0;
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp((l[i] - mx) / t);
  for (auto& x : p) x = static_cast<float>(x / s);
  return p;
}
const std::vector<float> kLogits = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.0f, 3.0f, -5.0f};
}  // namespace

TEST_CASE("argmax picks the lowest id among ties; greedy ignores the RNG") {
  CHECK(argmax(kLogits) == 1);
  Sampler s(8);
  Rng a(1), b(1);
  SamplingParams p;  // greedy
  CHECK(s.sample(kLogits, p, a) == 1);
  CHECK(a.next() == b.next());
}

TEST_CASE("Rng: same seed same stream, uniform in [0,1)") {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.next();
    CHECK(x == b.next());
    differs |= x != c.next();
  }
  CHECK(differs);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = a.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(std::fabs(sum / 100000 - 0.5) < 0.01);
}

TEST_CASE("distribution: temperature, top-k, top-p, min-p") {
  Sampler s(8);
  std::vector<float> probs(8);
  SamplingParams p;
  p.temperature = 0.7f;
  s.distribution(kLogits, p, probs);
  auto ref = softmax(kLogits, 0.7f);
  for (size_t i = 0; i < 8; ++i) CHECK(probs[i] == doctest::Approx(ref[i]).epsilon(1e-5));

  p.temperature = 1.0f;
  p.top_k = 3;
  s.distribution(kLogits, p, probs);
  CHECK(std::count_if(probs.begin(), probs.end(), [](float x) { return x > 0; }) == 3);
  CHECK(probs[1] > 0);
  CHECK(probs[6] > 0);
  CHECK(probs[2] > 0);
  CHECK(std::accumulate(probs.begin(), probs.end(), 0.0) == doctest::Approx(1.0));

  p.top_k = 0;
  p.top_p = 0.5f;  // ids 1 and 6 (0.27 each) reach 0.5 together
  s.distribution(kLogits, p, probs);
  CHECK(std::count_if(probs.begin(), probs.end(), [](float x) { return x > 0; }) == 2);
  CHECK(probs[1] == doctest::Approx(0.5));

  p.top_p = 1.0f;
  p.min_p = 0.5f;  // keep p ≥ 0.5·p_max: ids 1, 6 (1.0), 2 (e^-0.5 = 0.61); id 5 has e^-1 = 0.37
  s.distribution(kLogits, p, probs);
  CHECK(std::count_if(probs.begin(), probs.end(), [](float x) { return x > 0; }) == 3);
  CHECK(probs[5] == 0.0f);
}

TEST_CASE("sampled tokens follow the filtered distribution (chi-square)") {
  Sampler s(8);
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 6;
  p.top_p = 0.95f;
  std::vector<float> probs(8);
  s.distribution(kLogits, p, probs);
  Rng rng(7);
  const int n = 200000;
  std::vector<int> counts(8, 0);
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s.sample(kLogits, p, rng))];
  double chi2 = 0;
  int dof = -1;
  for (size_t i = 0; i < 8; ++i) {
    if (probs[i] == 0) {
      CHECK(counts[i] == 0);
      continue;
    }
    const double e = probs[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++dof;
  }
  // dof ≤ 5: the 99.9% quantile of chi-square(5) is 20.5.
  CHECK(dof >= 2);
  CHECK(chi2 < 20.5);
}

TEST_CASE("the same seed gives the same tokens") {
  Sampler s(8);
  SamplingParams p;
  p.temperature = 1.0f;
  Rng a(123), b(123);
  for (int i = 0; i < 100; ++i) CHECK(s.sample(kLogits, p, a) == s.sample(kLogits, p, b));
}
