// Lossless: every speculative decoder's greedy output equals ar's, and its sampling keeps ar's law.
#include "engine/sampler.h"
#include "tests/arch_models.h"
#include "tests/lossless_prompts.h"
#include "tests/runtime_fixture.h"

#include <map>

using namespace specd;
using namespace specd::test;


// "{}" is `auto` (k chosen per step from live acceptance and the cost model).
TEST_CASE("ngram greedy equals ar greedy on 50 prompts and several lengths and options") {
  RuntimeFixture f;
  const auto ps = lossless_prompts();
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

TEST_CASE("ngram greedy equals ar greedy on the llama, qwen2 and qwen3 models (issue 14's block options)") {
  const std::vector<std::string> texts = {"Once upon a time, there was a little", "The cat sat on the mat. The cat sat on",
                                          "def add(a, b):\n    return a + b\n\ndef", "1, 2, 3, 4, 5, 6,"};
  for (const ArchCase& c : kArchCases) {
    const std::string arch = c.arch;
    CAPTURE(arch);
    const engine::Model* m = arch_model(c);
    if (!m) continue;
    RuntimeFixture f(*m, {}, {"ar", "ngram"});
    double tpf = 0;
    for (const std::string& t : texts) {
      auto req = request(m->encode_prompt(t), 40, "ar");
      req.stop_tokens = m->stop_tokens();
      auto ar = f.run(req);
      req.decoder = "ngram";
      req.options_json = R"({"k": "4"})";
      auto ng = f.run(req);
      CHECK_MESSAGE(ng.tokens == ar.tokens, t);
      CHECK(ng.finish_reason == ar.finish_reason);
      tpf += ng.tokens_per_forward();
    }
    MESSAGE(arch << ": ngram equals ar on " << texts.size() << " prompts; mean TPF " << tpf / static_cast<double>(texts.size()));
  }
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
    req.options_json = seed % 2 ? R"({})" : R"({"k": "4"})";  // auto (the default) on odd seeds
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u + 1;  // independent streams for the two samples
    auto n = f.run(req);
    REQUIRE(a.tokens.size() > pos);
    REQUIRE(n.tokens.size() > pos);
    ++count_ar[a.tokens[pos]];
    ++count_ng[n.tokens[pos]];
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u;
    identical += f.run(req).tokens == a.tokens;
  }
  const ChiSquare c = two_sample_chi_square(count_ar, count_ng);
  REQUIRE(c.dof >= 2);
  MESSAGE("chi2 = " << c.chi2 << " on " << c.dof << " dof (critical " << c.critical << "); same-seed streams identical in "
                    << identical << "/" << n_seeds);
  CHECK(c.chi2 < c.critical);
}
