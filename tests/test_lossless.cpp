// Lossless: every speculative decoder's greedy output equals ar's, and its sampling keeps ar's law.
#include "engine/sampler.h"
#include "tests/runtime_fixture.h"

#include <cmath>
#include <map>

using namespace specd;
using namespace specd::test;

namespace {

// ≥ 50 prompts: story prefixes, repetitive text (where n-gram drafts hit), and random ids.
std::vector<std::vector<int32_t>> prompts() {
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

}  // namespace

TEST_CASE("ngram greedy equals ar greedy on 50 prompts and several lengths and options") {
  RuntimeFixture f;
  const auto ps = prompts();
  REQUIRE(ps.size() >= 50);
  int checked = 0;
  double tpf_sum = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const int32_t max_tokens = std::vector<int32_t>{17, 64, 150}[i % 3];
    auto ar = f.run(request(ps[i], max_tokens, "ar"));
    for (const char* opts : {R"({})", R"({"k": "1"})", R"({"k": "16", "ngram_max": "1"})", R"({"k": "4", "ngram_min": "2"})"}) {
      auto ng = f.run(request(ps[i], max_tokens, "ngram", opts));
      CHECK_MESSAGE(ng.tokens == ar.tokens, "prompt " << i << " options " << opts);
      CHECK(ng.finish_reason == ar.finish_reason);
      CHECK(ng.steps <= ar.steps);
      if (std::string(opts) == "{}") tpf_sum += ng.tokens_per_forward();
      ++checked;
    }
  }
  MESSAGE(checked << " ngram runs equal ar; mean ngram TPF " << tpf_sum / static_cast<double>(ps.size()));
}

TEST_CASE("ngram sampling keeps ar's next-token law (chi-square over seeds)") {
  RuntimeFixture f;
  // A repetitive prompt, so drafts are proposed and accepted or rejected at the measured position.
  const auto prompt = stories_model().tokenizer().encode("The cat sat on the mat. The cat sat on the mat. The cat", true);
  const int n_seeds = 1500;
  const size_t pos = 3;  // the law of the 4th generated token (after 3 draft-verified positions)
  std::map<int32_t, int> count_ar, count_ng;
  int identical = 0;
  for (int seed = 0; seed < n_seeds; ++seed) {
    auto req = request(prompt, 6, "ar");
    req.sampling.temperature = 1.0f;
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u;
    req.stop_tokens.clear();
    auto a = f.run(req);
    req.decoder = "ngram";
    req.options_json = R"({"k": "4"})";
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u + 1;  // independent streams for the two samples
    auto n = f.run(req);
    REQUIRE(a.tokens.size() > pos);
    REQUIRE(n.tokens.size() > pos);
    ++count_ar[a.tokens[pos]];
    ++count_ng[n.tokens[pos]];
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u;
    identical += f.run(req).tokens == a.tokens;
  }
  // Two-sample chi-square over categories with enough mass; pool the rest.
  double chi2 = 0;
  int dof = -1, rest_a = 0, rest_n = 0;
  std::map<int32_t, int> all = count_ar;
  for (auto& [t, c] : count_ng) all[t] += c;
  for (auto& [t, c] : all) {
    if (c < 20) {
      rest_a += count_ar[t];
      rest_n += count_ng[t];
      continue;
    }
    const double e = c / 2.0;
    chi2 += (count_ar[t] - e) * (count_ar[t] - e) / e + (count_ng[t] - e) * (count_ng[t] - e) / e;
    ++dof;
  }
  if (rest_a + rest_n >= 20) {
    const double e = (rest_a + rest_n) / 2.0;
    chi2 += (rest_a - e) * (rest_a - e) / e + (rest_n - e) * (rest_n - e) / e;
    ++dof;
  }
  REQUIRE(dof >= 2);
  // 99.9% quantile of chi-square(dof) by the Wilson–Hilferty approximation.
  const double z = 3.09, k = dof;
  const double crit = k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
  MESSAGE("chi2 = " << chi2 << " on " << dof << " dof (critical " << crit << "); same-seed streams identical in "
                    << identical << "/" << n_seeds);
  CHECK(chi2 < crit);
}
