// Decoder ABI 1.2 and 1.3 at the host: step_cost, seq_decoder_cost, seq_note_setting, the runtime's
// calibration and online refinement, `auto` recording its settings, decoder_memory, and decoders
// on older hosts.
#include "daemon/host_cost.h"
#include "daemon/plugin_host.h"
#include "daemon/sequence_state.h"
#include "plugins/common/spec_auto.h"
#include "tests/runtime_fixture.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

using namespace specd;
using namespace specd::test;

namespace {

// A prompt whose continuation repeats it, so ngram finds drafts.
std::vector<int32_t> repetitive() {
  return stories_model().tokenizer().encode("The cat sat on the mat. The cat sat on the mat. The cat sat on the", true);
}

int64_t total_steps(const daemon::DecodeResult& r) {
  int64_t n = 0;
  for (const auto& c : r.settings) n += c.steps;
  return n;
}

}  // namespace

TEST_CASE("step_cost: 1 for one row, the prior before timings, measured after live steps; NULL and rows <= 0 give 0") {
  RuntimeFixture f;
  const specd_host_api* api = daemon::host_api();
  REQUIRE(SPECD_HAS(specd_host_api, api, seq_note_setting));
  CHECK(api->abi_minor == SPECD_DECODER_ABI_MINOR);
  specd_host h;
  h.rt = &f.rt;
  CHECK(api->step_cost(&h, 1) == doctest::Approx(1.0));
  CHECK(api->step_cost(&h, 5) == doctest::Approx(1.0 + 4 * daemon::CostModel::kPriorSlope));
  CHECK(api->step_cost(&h, 0) == 0.0);
  CHECK(api->step_cost(nullptr, 3) == 0.0);
  CHECK(api->seq_decoder_cost(nullptr) == 0.0);
  CHECK_FALSE(f.rt.cost().measured());  // SPECD_COST_CALIBRATION=off in the test environment
  f.run(request(repetitive(), 24, "ar"));  // one-row decode steps, all with logits: observed
  CHECK(f.rt.cost().measured());
  CHECK(f.rt.cost().seconds(1) > 0.0);
  CHECK(api->step_cost(&h, 1) == doctest::Approx(1.0));
  // The finished request's rows are no other sequence's now: the next request's first step is
  // priced alone (it was priced on top of them).
  CHECK(f.rt.last_step_rows() == 0);
  CHECK(api->step_cost(&h, 8) == doctest::Approx(f.rt.cost().relative(8)));
}

TEST_CASE("decoder_memory: one zeroed block per decoder and model, kept across requests; NULL for bad sizes") {
  RuntimeFixture f;
  const specd_host_api* api = daemon::host_api();
  REQUIRE(SPECD_HAS(specd_host_api, api, decoder_memory));
  CHECK(api->abi_minor == 3);
  specd_host h;
  h.rt = &f.rt;
  h.decoder = f.plugins.find("ngram");
  REQUIRE(h.decoder != nullptr);
  auto* p = static_cast<unsigned char*>(api->decoder_memory(&h, 64));
  REQUIRE(p != nullptr);
  CHECK(std::all_of(p, p + 64, [](unsigned char c) { return c == 0; }));
  p[0] = 7, p[63] = 9;
  f.run(request(repetitive(), 8, "ngram", R"({"k": "4"})"));  // another request in between keeps it (k fixed: no auto)
  specd_host again;
  again.rt = &f.rt;
  again.decoder = h.decoder;
  auto* q = static_cast<unsigned char*>(api->decoder_memory(&again, 64));
  CHECK(q == p);
  CHECK(q[0] == 7);
  CHECK(q[63] == 9);
  specd_host other;  // another decoder: its own block
  other.rt = &f.rt;
  other.decoder = f.plugins.find("ar");
  auto* o = static_cast<unsigned char*>(api->decoder_memory(&other, 64));
  REQUIRE(o != nullptr);
  CHECK(o != p);
  CHECK(o[0] == 0);
  auto* resized = static_cast<unsigned char*>(api->decoder_memory(&h, 32));  // another layout: zeroed
  REQUIRE(resized != nullptr);
  CHECK(resized[0] == 0);
  CHECK(api->decoder_memory(&h, 0) == nullptr);
  CHECK(api->decoder_memory(&h, SPECD_DECODER_MEMORY_MAX + 1) == nullptr);
  CHECK(api->decoder_memory(&h, SPECD_DECODER_MEMORY_MAX) != nullptr);
  CHECK(api->decoder_memory(nullptr, 8) == nullptr);
  specd_host loose;  // no runtime or decoder behind it
  CHECK(api->decoder_memory(&loose, 8) == nullptr);
  // A 1.2 host has the cost slots and not this one.
  const specd_host_api* v12 = daemon::host_api(2u);
  CHECK(v12->abi_minor == 2);
  CHECK(SPECD_HAS(specd_host_api, v12, seq_note_setting));
  CHECK_FALSE(SPECD_HAS(specd_host_api, v12, decoder_memory));
  // redrafter's auto runs there without it, from its prior each request, with the same output
  daemon::RuntimeLimits limits;
  limits.host_abi_minor = 2;
  RuntimeFixture old(limits, {"ar", "redrafter"});
  const auto ar = old.run(request(repetitive(), 40, "ar"));
  const auto rd = old.run(request(repetitive(), 40, "redrafter"));
  CHECK(rd.tokens == ar.tokens);
  CHECK_FALSE(rd.settings.empty());
}

TEST_CASE("ngram auto keeps the acceptance a request learned in the host's decoder memory; plain-only requests keep it as it was") {
  RuntimeFixture f;
  const auto first = f.run(request(repetitive(), 48, "ngram"));  // repetitive: drafts are found and verified
  REQUIRE(first.finish_reason != SPECD_FINISH_ERROR);
  const auto* hist = static_cast<const spec_accept_hist*>(f.rt.decoder_memory("ngram", sizeof(spec_accept_hist)));
  REQUIRE(hist != nullptr);
  REQUIRE(hist->version == SPEC_AUTO_HIST_VERSION);
  CHECK(hist->size == sizeof(spec_accept_hist));
  CHECK(hist->acc.tries[1] > 0.0);
  CHECK(hist->acc.hits[1] > 0.0);
  const spec_accept kept = hist->acc;
  // A fixed k is not auto: the block is not touched.
  f.run(request(repetitive(), 24, "ngram", R"({"k": "4"})"));
  CHECK(std::memcmp(&hist->acc, &kept, sizeof kept) == 0);
  // One token: no draft is verified; what the first request learned stays (its counts capped as
  // the request was seeded, the estimates the same).
  f.run(request(repetitive(), 1, "ngram"));
  CHECK(hist->acc.tries[1] == doctest::Approx(std::min(kept.tries[1], SPEC_AUTO_SEED_STEPS)));
  for (int32_t d = 1; d <= 4; ++d) CHECK(spec_accept_p(&hist->acc, d) == doctest::Approx(spec_accept_p(&kept, d)).epsilon(0.05));
  const auto ar = f.run(request(repetitive(), 48, "ar"));
  const auto second = f.run(request(repetitive(), 48, "ngram"));  // seeded: still lossless
  CHECK(second.tokens == ar.tokens);
}

TEST_CASE("seq_note_setting: counts per label without allocating; bad labels and the 64-label limit") {
  RuntimeFixture f;
  const specd_host_api* api = daemon::host_api();
  specd_seq s;
  s.rt = &f.rt;
  s.result.settings.reserve(daemon::kMaxSettings);
  CHECK(api->seq_note_setting(&s, "k=4") == SPECD_OK);
  CHECK(api->seq_note_setting(&s, "k=4") == SPECD_OK);
  CHECK(api->seq_note_setting(&s, "plain") == SPECD_OK);
  REQUIRE(s.result.settings.size() == 2);
  CHECK(std::string(s.result.settings[0].label) == "k=4");
  CHECK(s.result.settings[0].steps == 2);
  CHECK(api->seq_note_setting(&s, nullptr) == SPECD_E_INVALID_ARG);
  CHECK(api->seq_note_setting(&s, "") == SPECD_E_INVALID_ARG);
  CHECK(api->seq_note_setting(nullptr, "k=1") == SPECD_E_INVALID_ARG);
  const std::string longer(40, 'x');
  CHECK(api->seq_note_setting(&s, longer.c_str()) == SPECD_OK);
  CHECK(std::string(s.result.settings.back().label) == std::string(31, 'x'));  // kept: 31 bytes
  while (s.result.settings.size() < daemon::kMaxSettings) {
    char label[16];
    std::snprintf(label, sizeof label, "s%zu", s.result.settings.size());
    REQUIRE(api->seq_note_setting(&s, label) == SPECD_OK);
  }
  CHECK(api->seq_note_setting(&s, "one-too-many") == SPECD_E_LIMIT);
  CHECK(api->seq_note_setting(&s, "k=4") == SPECD_OK);  // known labels still count
  CHECK(s.result.settings[0].steps == 3);
}

TEST_CASE("seq_decoder_cost: 0 before any step and without timings, then the last plan + accept in one-row forwards") {
  RuntimeFixture f;
  specd_seq s;
  s.rt = &f.rt;
  s.decoder_seconds = 0.5;
  CHECK(daemon::host_cost::seq_decoder_cost(&s) == 0.0);  // no unit yet
  f.run(request(repetitive(), 8, "ar"));
  REQUIRE(f.rt.cost().one_row_seconds() > 0.0);
  CHECK(daemon::host_cost::seq_decoder_cost(&s) == doctest::Approx(0.5 / f.rt.cost().one_row_seconds()));
}

TEST_CASE("ngram without options is auto: it records the settings it chose and equals ar; fixed k records none") {
  RuntimeFixture f;
  const auto ar = f.run(request(repetitive(), 48, "ar"));
  const auto au = f.run(request(repetitive(), 48, "ngram"));
  CHECK(au.tokens == ar.tokens);
  REQUIRE_FALSE(au.settings.empty());
  for (const auto& c : au.settings) {
    const std::string l = c.label;
    CHECK((l == "plain" || l.rfind("k=", 0) == 0));
  }
  CHECK(total_steps(au) <= au.steps);
  CHECK(au.steps < ar.steps);  // drafts were verified and accepted on this prompt
  const auto fixed = f.run(request(repetitive(), 48, "ngram", R"({"k": "4"})"));
  CHECK(fixed.settings.empty());
  CHECK(fixed.tokens == ar.tokens);
}

TEST_CASE("decoders on a 1.1 or 1.0 host: no 1.2 slots in the table, auto falls back to fixed settings, same output") {
  for (uint32_t minor : {0u, 1u}) {
    CAPTURE(minor);
    const specd_host_api* old = daemon::host_api(minor);
    CHECK(old->abi_minor == minor);
    CHECK_FALSE(SPECD_HAS(specd_host_api, old, step_cost));
    CHECK(SPECD_HAS(specd_host_api, old, refuse) == (minor >= 1));
    daemon::RuntimeLimits limits;
    limits.host_abi_minor = minor;
    RuntimeFixture f(limits);
    RuntimeFixture now;
    const auto ar = now.run(request(repetitive(), 40, "ar"));
    for (const char* dec : {"ar", "ngram", "c_plugin"}) {
      CAPTURE(dec);
      const auto r = f.run(request(repetitive(), 40, dec));
      CHECK(r.finish_reason != SPECD_FINISH_ERROR);
      CHECK(r.settings.empty());
      if (std::string(dec) != "c_plugin") CHECK(r.tokens == ar.tokens);
    }
  }
  CHECK(daemon::host_api(7u) == daemon::host_api());  // a newer minor than this build: the current table
}

TEST_CASE("a plugin whose descriptor says 1.1 loads and runs on this 1.2 host, like its 1.2 twin") {
  RuntimeFixture f({}, {"ar", "c_plugin", "c_plugin_v11"});
  const daemon::LoadedDecoder* v11 = f.plugins.find("c_plugin_v11");
  REQUIRE(v11 != nullptr);
  CHECK(v11->desc->abi_minor == 1);
  const auto now = f.run(request(repetitive(), 24, "c_plugin"));
  const auto old = f.run(request(repetitive(), 24, "c_plugin_v11"));
  CHECK(old.finish_reason == now.finish_reason);
  CHECK(old.tokens == now.tokens);
  CHECK(old.settings.empty());
}

TEST_CASE("a runtime calibrates at construction into $SPECD_CACHE/cost and reads the cache the next time") {
  namespace fs = std::filesystem;
  const ScopedCostCache scope("specd_calib");
  const fs::path dir = scope.dir;
  {
    RuntimeFixture f;
    CHECK(f.rt.cost().measured());
    CHECK(f.rt.cost().knots().size() >= 2);
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir / "cost")) files += e.is_regular_file();
  CHECK(files == 1);
  {
    RuntimeFixture f;
    CHECK(f.rt.cost().measured());
  }
  daemon::RuntimeLimits skip;
  skip.calibrate_cost = false;
  RuntimeFixture none(skip);
  CHECK_FALSE(none.rt.cost().measured());
}
