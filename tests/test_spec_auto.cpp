// The shared `auto` choice (plugins/common/spec_auto.h) on synthetic acceptance and cost inputs.
#include "plugins/common/spec_auto.h"

#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

namespace {

// A sequence whose drafts are accepted with probability p at every depth, over many steps of k drafts.
spec_accept with_rate(double p, int32_t k, int steps) {
  spec_accept a;
  spec_accept_init(&a, SPEC_AUTO_PRIOR_P);
  // Deterministic: the per-depth acceptance frequencies approach p in every stretch of steps.
  for (int s = 0; s < steps; ++s) {
    int32_t acc = 0;
    double reach = 1.0;
    const double x = (s + 1) * 0.6180339887498949;  // golden-ratio points: even in every window of steps
    const double u = x - static_cast<double>(static_cast<int64_t>(x));
    while (acc < k && u < reach * p) {
      reach *= p;
      ++acc;
    }
    spec_accept_record(&a, k, acc);
  }
  return a;
}

// The candidate with the highest tokens / cost, by brute force.
int32_t brute_argmax(const std::vector<double>& t, const std::vector<double>& c) {
  int32_t best = 0;
  for (std::size_t i = 1; i < t.size(); ++i)
    if (t[i] / c[i] > t[static_cast<std::size_t>(best)] / c[static_cast<std::size_t>(best)]) best = static_cast<int32_t>(i);
  return best;
}

}  // namespace

TEST_CASE("spec_auto: the prior, recording by depth, and expected tokens of a chain") {
  spec_accept a;
  spec_accept_init(&a, 0.5);
  CHECK(spec_accept_p(&a, 1) == doctest::Approx(0.5));
  CHECK(spec_expected_tokens(&a, 0) == doctest::Approx(1.0));
  CHECK(spec_expected_tokens(&a, 2) == doctest::Approx(1.0 + 0.5 + 0.25));
  spec_accept_record(&a, 4, 1);  // depth 1 hit, depth 2 miss, 3 and 4 never reached
  CHECK(a.tries[1] == doctest::Approx(1.0));
  CHECK(a.hits[1] == doctest::Approx(1.0));
  CHECK(a.tries[2] == doctest::Approx(1.0));
  CHECK(a.hits[2] == 0.0);
  CHECK(a.tries[3] == 0.0);
  CHECK(spec_accept_p(&a, 1) == doctest::Approx((1.0 + 0.5 * SPEC_AUTO_PRIOR_N) / (1.0 + SPEC_AUTO_PRIOR_N)));
  spec_accept_record(&a, 0, 0);  // nothing drafted: nothing learned
  CHECK(a.tries[1] == doctest::Approx(1.0));
  spec_accept_record(&a, 2, 5);  // accepted is cut to drafted
  CHECK(a.tries[3] == 0.0);
  CHECK(spec_accept_p(&a, 0) == 0.0);
  CHECK(spec_accept_p(&a, SPEC_AUTO_MAX_DEPTH + 1) == 0.0);
  spec_accept_init(&a, 7.0);  // an impossible prior falls back to the default
  CHECK(a.prior_p == SPEC_AUTO_PRIOR_P);
}

TEST_CASE("spec_auto: a depth never verified is expected to accept as the one above it") {
  spec_accept a;
  spec_accept_init(&a, 0.5);
  for (int i = 0; i < 40; ++i) spec_accept_record(&a, 3, 3);  // every draft of 3 accepted
  const double p3 = spec_accept_p(&a, 3);
  CHECK(p3 > 0.9);
  CHECK(a.tries[4] == 0.0);
  CHECK(spec_accept_p(&a, 4) == doctest::Approx(p3));  // not the neutral 0.5
  CHECK(spec_accept_p(&a, 9) == doctest::Approx(p3));
  // so a longer chain is expected to pay more, and gets tried
  CHECK(spec_expected_tokens(&a, 6) > spec_expected_tokens(&a, 3) + 2.0);
  // where drafts fail, the depths below inherit that
  spec_accept b;
  spec_accept_init(&b, 0.5);
  for (int i = 0; i < 40; ++i) spec_accept_record(&b, 2, 0);
  CHECK(spec_accept_p(&b, 1) < 0.1);
  CHECK(spec_accept_p(&b, 5) < 0.1);
  // a measured depth still follows its own counts
  spec_accept c = a;
  for (int i = 0; i < 60; ++i) spec_accept_record(&c, 5, 3);  // depths 1-3 hit, 4 missed
  CHECK(spec_accept_p(&c, 4) < 0.1);
}

TEST_CASE("spec_auto: old steps fade, so the estimate follows the text") {
  spec_accept a = with_rate(0.9, 4, 200);
  CHECK(spec_accept_p(&a, 1) > 0.8);
  for (int i = 0; i < 200; ++i) spec_accept_record(&a, 4, 0);
  CHECK(spec_accept_p(&a, 1) < 0.15);  // from 0.7
}

TEST_CASE("spec_auto: picks the argmax of expected tokens per unit of time on synthetic inputs") {
  // Costs of an affine machine (1 + 0.1 per extra row) and of a flat one (rows are nearly free).
  for (double p : {0.3, 0.6, 0.8, 0.95}) {
    for (double slope : {0.02, 0.1, 0.5}) {
      CAPTURE(p);
      CAPTURE(slope);
      const spec_accept a = with_rate(p, 12, 400);
      std::vector<double> t, c;
      for (int32_t k = 0; k <= 12; ++k) {
        t.push_back(spec_expected_tokens(&a, k));
        c.push_back(1.0 + slope * k);
      }
      const int32_t got = spec_auto_argmax(t.data(), c.data(), 13);
      const int32_t want = brute_argmax(t, c);
      // The margin may keep a cheaper candidate whose rate is within 2% of the best.
      CHECK(t[static_cast<std::size_t>(got)] / c[static_cast<std::size_t>(got)] * SPEC_AUTO_MARGIN >=
            t[static_cast<std::size_t>(want)] / c[static_cast<std::size_t>(want)]);
      CHECK(got <= want);
    }
  }
  // Flat costs and good drafts: the longest chain; costly rows and good drafts: a middle one.
  const spec_accept good = with_rate(0.9, 12, 400);
  std::vector<double> t, flat, steep;
  for (int32_t k = 0; k <= 12; ++k) {
    t.push_back(spec_expected_tokens(&good, k));
    flat.push_back(1.0 + 0.001 * k);
    steep.push_back(1.0 + 0.3 * k);
  }
  CHECK(spec_auto_argmax(t.data(), flat.data(), 13) == 12);
  const int32_t mid = spec_auto_argmax(t.data(), steep.data(), 13);
  CHECK(mid > 0);
  CHECK(mid < 12);
}

TEST_CASE("spec_auto: plain steps when speculation cannot pay, and a probe every SPEC_AUTO_PROBE of them") {
  spec_accept bad = with_rate(0.05, 8, 400);
  std::vector<double> t, c;
  for (int32_t k = 0; k <= 8; ++k) {
    t.push_back(spec_expected_tokens(&bad, k));
    c.push_back(1.0 + 0.2 * k);  // a CPU whose rows cost a fifth of a forward each
  }
  CHECK(spec_auto_argmax(t.data(), c.data(), 9) == 0);
  // Even perfect drafts do not pay where every row costs a whole forward.
  spec_accept perfect = with_rate(1.0, 8, 400);
  std::vector<double> tp, linear;
  for (int32_t k = 0; k <= 8; ++k) {
    tp.push_back(spec_expected_tokens(&perfect, k));
    linear.push_back(1.0 + 1.0 * k);
  }
  CHECK(spec_auto_argmax(tp.data(), linear.data(), 9) == 0);
  // Probes after 16, then 32, 64 and 128 more plain steps: the wait doubles while plain keeps winning.
  std::vector<int> probe_steps;
  for (int step = 1; step <= 16 + 32 + 64 + 128; ++step) {
    const int32_t k = spec_auto_choose(&bad, t.data(), c.data(), 9);
    if (k != 0) {
      probe_steps.push_back(step);
      CHECK(k == 1);  // the best speculative candidate: the shortest draft when drafts are bad
    }
  }
  CHECK(probe_steps == std::vector<int>{16, 48, 112, 240});
  // A speculative win resets the wait.
  spec_accept good = with_rate(0.95, 8, 400);
  std::vector<double> tg;
  for (int32_t k = 0; k <= 8; ++k) tg.push_back(spec_expected_tokens(&good, k));
  bad.probe_every = 512;
  CHECK(spec_auto_choose(&bad, tg.data(), c.data(), 9) > 0);
  CHECK(bad.probe_every == SPEC_AUTO_PROBE);
  CHECK(spec_auto_choose(&bad, t.data(), c.data(), 1) == 0);  // only the plain step to choose from
  // A probe three times a plain step's cost (2 extra) waits until it is at most 2 % of the plain
  // steps before it (100 of them), then the doubling takes over again once it is the longer wait.
  spec_accept costly = with_rate(0.05, 8, 400);
  std::vector<double> c3;
  for (int32_t k = 0; k <= 8; ++k) c3.push_back(k == 0 ? 1.0 : 1.0 + 2.0 * k);
  std::vector<int> costly_probes;
  for (int step = 1; step <= 700; ++step)
    if (spec_auto_choose(&costly, t.data(), c3.data(), 9) != 0) costly_probes.push_back(step);
  CHECK(costly_probes == std::vector<int>{100, 200, 300, 428, 684});
  // Candidates without a cost (<= 0) are never chosen.
  const double t2[3] = {1.0, 5.0, 9.0}, c2[3] = {1.0, 0.0, -1.0};
  CHECK(spec_auto_argmax(t2, c2, 3) == 0);
}

TEST_CASE("spec_auto: a sequence seeded from the decoder memory starts from the kept estimates, capped") {
  const spec_accept done = with_rate(0.7, 6, 200);
  spec_accept_hist h{};  // as the host hands it out: zeroed
  spec_accept a;
  spec_accept_init(&a, SPEC_AUTO_PRIOR_P);
  const spec_accept fresh = a;
  spec_accept_seed(&a, &h);  // nothing kept yet
  spec_accept_seed(&a, nullptr);
  CHECK(a.tries[1] == fresh.tries[1]);
  spec_accept_keep(&h, &fresh);  // nothing verified: nothing to keep
  CHECK(h.version == 0u);
  spec_accept_keep(nullptr, &done);
  spec_accept_keep(&h, &done);
  CHECK(h.version == SPEC_AUTO_HIST_VERSION);
  CHECK(h.size == sizeof h);
  spec_accept_seed(&a, &h);
  CHECK(a.tries[1] == doctest::Approx(SPEC_AUTO_SEED_STEPS));
  for (int32_t d = 1; d <= 6; ++d) CHECK(spec_accept_p(&a, d) == doctest::Approx(spec_accept_p(&done, d)).epsilon(0.1));
  CHECK(a.plain_run == 0);  // the probe is the sequence's own
  CHECK(a.probe_every == SPEC_AUTO_PROBE);
  // The sequence's own steps soon outweigh the seed: all misses for 40 steps.
  for (int i = 0; i < 40; ++i) spec_accept_record(&a, 6, 0);
  CHECK(spec_accept_p(&a, 1) < 0.15);  // from 0.7
  spec_accept b;
  spec_accept_init(&b, SPEC_AUTO_PRIOR_P);
  h.size += 1;  // another build's layout: ignored
  spec_accept_seed(&b, &h);
  CHECK(b.tries[1] == 0.0);
  // A short history is not inflated by the cap.
  spec_accept c = fresh;
  spec_accept_record(&c, 2, 1);
  spec_accept_cap(&c, SPEC_AUTO_SEED_STEPS);
  CHECK(c.tries[1] == 1.0);
}

TEST_CASE("spec_auto: a probe that commits to several steps waits in proportion") {
  // One plain step costs 1, the speculative candidate 3 for 1.2 tokens: plain always wins.
  const double t[2] = {1.0, 1.2}, c[2] = {1.0, 3.0};
  for (double steps : {1.0, 8.0}) {
    spec_accept a;
    spec_accept_init(&a, SPEC_AUTO_PRIOR_P);
    int32_t first = -1;
    for (int32_t i = 1; i <= 5000 && first < 0; ++i)
      if (spec_auto_choose_probing(&a, t, c, 2, steps) != 0) first = i;
    CAPTURE(steps);
    CHECK(first == static_cast<int32_t>(steps * 2.0 / SPEC_AUTO_PROBE_SHARE + 0.5));  // extra cost 2 per step
  }
}
