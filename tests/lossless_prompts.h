// What lossless tests share: ≥ 50 prompts and a two-sample chi-square test of token laws.
#pragma once

#include "engine/sampler.h"
#include "tests/engine_fixture.h"

#include <cmath>
#include <map>
#include <vector>

namespace specd::test {

// ≥ 50 prompts: story prefixes, repetitive text (where n-gram drafts hit), and random ids.
inline std::vector<std::vector<int32_t>> lossless_prompts() {
  const auto& tok = stories_model().tokenizer();
  std::vector<std::vector<int32_t>> out;
  for (size_t n = 0; n < 120; n += 6) {
    std::vector<int32_t> p = {1};
    p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + static_cast<std::ptrdiff_t>(n));
    out.push_back(p);
  }
  for (const char* text :
       {"Once upon a time", "The cat sat on the mat. The cat sat on the mat. The cat",
        "Tom and Sam went to the park. Tom and Sam went to the", "One, two, three. One, two, three. One, two,",
        "She said, \"I want to play.\" He said, \"I want to play.\" She said,", "a b c a b c a b c a b",
        "Lily was happy. Lily was happy. Lily was", "The dog ran and ran and ran and ran and",
        "Ben had a big red ball. Ben had a big red ball. Ben had", "Once upon a time, there was a little girl",
        "the the the the the the the the", "Mom said no. Dad said no. Mom said no. Dad said",
        "They played all day. They played all day. They played", "Sue liked cake. Sue liked cake.",
        "x", "Hello! Hello! Hello! Hello!", "The sun was hot. The sun was hot. The sun was hot.",
        "I like to run. I like to jump. I like to run. I like to"})
    out.push_back(tok.encode(text, true));
  engine::Rng rng(99);
  for (int i = 0; i < 12; ++i) {
    std::vector<int32_t> p = {1};
    for (int j = 0; j < 4 + i * 3; ++j) p.push_back(static_cast<int32_t>(3 + rng.next() % 509));
    out.push_back(p);
  }
  return out;
}


struct ChiSquare {
  double chi2 = 0;
  int dof = -1;
  double critical = 0;  // the 99.9% quantile of chi-square(dof)
};

// Two-sample chi-square of two token histograms with equal totals: categories with fewer than
// min_count observations together are pooled into one.
inline ChiSquare two_sample_chi_square(std::map<int32_t, int> a, std::map<int32_t, int> b, int min_count = 20) {
  ChiSquare r;
  int rest_a = 0, rest_b = 0;
  std::map<int32_t, int> all = a;
  for (auto& [t, c] : b) all[t] += c;
  auto add = [&r](double x, double y) {
    const double e = (x + y) / 2.0;
    r.chi2 += (x - e) * (x - e) / e + (y - e) * (y - e) / e;
    ++r.dof;
  };
  for (auto& [t, c] : all) {
    if (c < min_count) {
      rest_a += a[t];
      rest_b += b[t];
      continue;
    }
    add(a[t], b[t]);
  }
  if (rest_a + rest_b >= min_count) add(rest_a, rest_b);
  // Wilson–Hilferty approximation.
  const double z = 3.09, k = r.dof > 0 ? r.dof : 1;
  r.critical = k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
  return r;
}

}  // namespace specd::test
