// The decoding runtime: decoders by name, stops, errors, misbehaving plugins, batching, cancel.
#include "daemon/engine_worker_impl.h"
#include "daemon/plugin_host.h"
#include "daemon/sequence_state.h"
#include "tests/runtime_fixture.h"

#include "tests/alloc_counter.h"

#include <algorithm>
#include <functional>
#include <string_view>


using namespace specd;
using namespace specd::test;
using daemon::DecodeResult;

namespace {
std::vector<int32_t> golden_prefix(size_t n) {
  std::vector<int32_t> p = {1};
  p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + static_cast<std::ptrdiff_t>(n));
  return p;
}
}  // namespace

TEST_CASE("ar and the plain-C test plugin give the 200 golden ids from BOS") {
  RuntimeFixture f;
  for (const char* dec : {"ar", "c_plugin"}) {
    auto r = f.run(request({1}, 200, dec));
    CHECK_MESSAGE(r.tokens == golden_ids(), dec);
    CHECK(r.finish_reason == SPECD_FINISH_LENGTH);
    CHECK(r.steps == 200);
    CHECK(r.prefill_steps == 1);
  }
}

TEST_CASE("long prompts are prefilled in chunks and give the same continuation") {
  RuntimeFixture f;
  auto whole = f.run(request(golden_prefix(150), 20, "ar", R"({"prefill_chunk": "256"})"));
  auto chunked = f.run(request(golden_prefix(150), 20, "ar", R"({"prefill_chunk": "16"})"));
  CHECK(whole.tokens == chunked.tokens);
  CHECK(chunked.prefill_steps == 10);  // 151 prompt tokens / 16
  CHECK(whole.tokens == std::vector<int32_t>(golden_ids().begin() + 150, golden_ids().begin() + 170));
}

TEST_CASE("stop tokens and stop strings end the sequence with reason stop") {
  RuntimeFixture f;
  auto req = request({1}, 200);
  req.stop_tokens = {golden_ids()[10]};
  auto r = f.run(req);
  CHECK(r.finish_reason == SPECD_FINISH_STOP);
  REQUIRE(!r.tokens.empty());
  CHECK(r.tokens.back() == golden_ids()[10]);
  CHECK(r.tokens.size() <= 11);

  req = request({1}, 200, "ngram");
  req.stop_strings = {"red ball"};
  r = f.run(req);
  CHECK(r.finish_reason == SPECD_FINISH_STOP);
  std::vector<int32_t> all = {1};
  all.insert(all.end(), r.tokens.begin(), r.tokens.end());
  const std::string text = stories_model().tokenizer().decode(all);
  CHECK(text.find("red ball") != std::string::npos);
  CHECK(text.size() - text.find("red ball") < 16);  // stopped right there
}

TEST_CASE("bad requests get named errors and leave nothing behind") {
  RuntimeFixture f;
  auto expect = [&](daemon::DecodeRequest req, int code, const char* phrase) {
    auto r = f.rt.submit(req, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(phrase) != std::string::npos, r.error().message);
  };
  expect(request({1}, 10, "nope"), SPECD_E_UNKNOWN_DECODER, "unknown decoder 'nope'");
  expect(request({1}, 10, "ngram", R"({"kk": "4"})"), SPECD_E_BAD_OPTION, "unknown option 'kk'");
  expect(request({1}, 10, "ngram", R"({"k": "0"})"), SPECD_E_BAD_OPTION, "option 'k'");
  expect(request({1}, 10, "ngram", R"({"k": "x"})"), SPECD_E_BAD_OPTION, "option 'k'");
  expect(request({1}, 10, "ngram", "{not json"), SPECD_E_BAD_OPTION, "not valid JSON");
  expect(request({1}, 10, "ngram", "[1]"), SPECD_E_BAD_OPTION, "JSON object");
  expect(request({}, 10), SPECD_E_INVALID_ARG, "empty prompt");
  expect(request({1, 512}, 10), SPECD_E_BAD_TOKEN, "out of range");
  expect(request({1}, 0), SPECD_E_INVALID_ARG, "max_tokens");
  expect(request(std::vector<int32_t>(2048, 5), 10), SPECD_E_CONTEXT, "context");
  CHECK(f.rt.idle());
  CHECK(f.run(request({1}, 20)).tokens == std::vector<int32_t>(golden_ids().begin(), golden_ids().begin() + 20));
}

TEST_CASE("a misbehaving decoder fails only its own request") {
  struct Case {
    const char* mode;
    int code;
    const char* phrase;
  };
  for (const Case& c : {Case{"bad_token", SPECD_E_PLUGIN, "emitted token id 99999"},
                        Case{"bad_commit", SPECD_E_PLUGIN, "position"},
                        Case{"no_progress", SPECD_E_PLUGIN, "no progress"},
                        Case{"no_rows", SPECD_E_PLUGIN, "planned no rows"},
                        Case{"bad_row", SPECD_E_PLUGIN, "row_see"},
                        Case{"plan_error", SPECD_E_INTERNAL, "misbehave"},
                        Case{"nan_logits", SPECD_E_PLUGIN, "logits passed to sample() are not finite (NaN at token 7)"},
                        Case{"huge_alloc", SPECD_E_NOMEM, "the host refused both allocations"},
                        Case{"huge_buf", SPECD_E_NOMEM, "the host refused both buffers"},
                        Case{"slow", SPECD_E_PLUGIN, "ms in plan (limit 40 ms)"}}) {
    CAPTURE(c.mode);
    daemon::RuntimeLimits lim;
    lim.max_idle_steps = 8;
    lim.max_decoder_ms = 40;               // "slow" sleeps 80 ms in plan
    lim.plugin_bytes = size_t{16} << 20;   // "huge_alloc" asks for 64 MiB, "huge_buf" for 64 MiB of floats
    RuntimeFixture f(lim);
    struct Out {
      DecodeResult r[2];
      int done = 0;
    } out;
    daemon::DecodeCallbacks cb;
    cb.on_finished = [](int64_t id, const DecodeResult& r, void* u) {
      auto* o = static_cast<Out*>(u);
      o->r[id % 2] = r;
      ++o->done;
    };
    cb.user = &out;
    auto good = f.rt.submit(request({1}, 60), cb);  // id 1
    auto bad = f.rt.submit(request({1}, 60, "misbehave", std::string(R"({"mode": ")") + c.mode + "\"}"), cb);
    REQUIRE(good.has_value());
    REQUIRE(bad.has_value());
    for (int i = 0; i < 500 && out.done < 2; ++i) f.rt.step();
    REQUIRE(out.done == 2);
    CHECK(out.r[1].tokens == std::vector<int32_t>(golden_ids().begin(), golden_ids().begin() + 60));
    CHECK(out.r[0].finish_reason == SPECD_FINISH_ERROR);
    CHECK(out.r[0].error.code == c.code);
    CHECK_MESSAGE(out.r[0].error.message.find(c.phrase) != std::string::npos, out.r[0].error.message);
    CHECK(f.rt.idle());
    CHECK(f.rt.kv().n_free_blocks() == f.rt.kv().n_blocks());
    CHECK(f.rt.plugin_bytes_in_use() == 0);  // every instance's memory went back to the account
  }
}

TEST_CASE("decoder memory is counted: mem_alloc and buf_create stop at the limit and give it back") {
  daemon::RuntimeLimits lim;
  lim.plugin_bytes = size_t{1} << 20;
  RuntimeFixture f(lim);
  auto* h = new specd_host;  // a host handle as create() gets one
  h->rt = &f.rt;
  const specd_host_api* api = daemon::host_api();
  void* a = api->mem_alloc(h, 600 << 10);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 16 == 0);
  CHECK(f.rt.plugin_bytes_in_use() >= (600u << 10));
  CHECK(api->mem_alloc(h, 600 << 10) == nullptr);  // past the limit
  specd_buf* b = nullptr;
  CHECK(api->buf_create(h, 150 << 10, &b) == SPECD_E_NOMEM);  // 600 KiB of floats: past it too
  CHECK(b == nullptr);
  CHECK(api->buf_create(h, 1 << 10, &b) == SPECD_OK);
  CHECK(api->mem_alloc(h, std::numeric_limits<size_t>::max()) == nullptr);
  CHECK(api->mem_alloc(nullptr, 16) == nullptr);
  specd_buf* none = nullptr;
  CHECK(api->buf_create(nullptr, 16, &none) == SPECD_E_INVALID_ARG);
  api->buf_destroy(h, b);
  api->mem_free(nullptr, a);  // the block knows its account; h is not needed
  api->mem_free(h, nullptr);
  CHECK(f.rt.plugin_bytes_in_use() == 0);
  void* again = api->mem_alloc(h, 900 << 10);
  CHECK(again != nullptr);
  api->mem_free(h, again);
  delete h;
}

TEST_CASE("sequences with different decoders in one merged forward equal their solo runs") {
  const std::vector<std::pair<std::string, std::vector<int32_t>>> jobs = {
      {"ar", {1}}, {"ngram", golden_prefix(30)}, {"c_plugin", golden_prefix(5)}, {"ngram", {1, 403}},
      {"ar", golden_prefix(60)}, {"ngram", golden_prefix(99)}};
  std::vector<DecodeResult> solo;
  {
    RuntimeFixture f;
    for (const auto& [dec, prompt] : jobs) solo.push_back(f.run(request(prompt, 48, dec)));
  }
  RuntimeFixture f;
  std::vector<DecodeResult> together(jobs.size());
  int done = 0;
  struct Ctx {
    std::vector<DecodeResult>* out;
    int* done;
    int64_t first;
  } ctx{&together, &done, 0};
  daemon::DecodeCallbacks cb;
  cb.on_finished = [](int64_t id, const DecodeResult& r, void* u) {
    auto* c = static_cast<Ctx*>(u);
    (*c->out)[static_cast<size_t>(id - c->first)] = r;
    ++*c->done;
  };
  cb.user = &ctx;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto id = f.rt.submit(request(jobs[i].second, 48, jobs[i].first), cb);
    REQUIRE(id.has_value());
    if (i == 0) ctx.first = *id;
  }
  int steps = 0;
  while (done < static_cast<int>(jobs.size())) {
    f.rt.step();
    ++steps;
  }
  for (size_t i = 0; i < jobs.size(); ++i) CHECK_MESSAGE(together[i].tokens == solo[i].tokens, jobs[i].first);
  CHECK(steps <= 49);  // every request advanced in every merged step
}

TEST_CASE("cancel ends a request with reason cancel and frees its cache") {
  RuntimeFixture f;
  DecodeResult out;
  daemon::DecodeCallbacks cb;
  cb.on_finished = [](int64_t, const DecodeResult& r, void* u) { *static_cast<DecodeResult*>(u) = r; };
  cb.user = &out;
  auto id = f.rt.submit(request({1}, 200), cb);
  REQUIRE(id.has_value());
  for (int i = 0; i < 10; ++i) f.rt.step();
  f.rt.cancel(*id);
  f.rt.step();
  CHECK(f.rt.idle());
  CHECK(out.finish_reason == SPECD_FINISH_CANCEL);
  CHECK(out.tokens.size() == 10);
  CHECK(f.rt.kv().n_free_blocks() == f.rt.kv().n_blocks());
}

TEST_CASE("a full context ends generation with reason context") {
  RuntimeFixture f;
  std::vector<int32_t> prompt(2040, 300);
  prompt[0] = 1;
  auto r = f.run(request(prompt, 100));
  CHECK(r.finish_reason == SPECD_FINISH_CONTEXT);
  CHECK(r.tokens.size() <= 9);
  CHECK(!r.tokens.empty());
}

TEST_CASE("too many live sequences is a named limit") {
  daemon::RuntimeLimits lim;
  lim.max_sequences = 2;
  RuntimeFixture f(lim);
  REQUIRE(f.rt.submit(request({1}, 5), {}).has_value());
  REQUIRE(f.rt.submit(request({1}, 5), {}).has_value());
  auto r = f.rt.submit(request({1}, 5), {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_LIMIT);
}

TEST_CASE("KV reservations: a request that fits an empty cache waits for room; one that never fits is refused") {
  daemon::RuntimeLimits lim;
  lim.kv_bytes = size_t{1} << 20;
  RuntimeFixture f(lim);
  using Admission = daemon::DecodeRuntime::Admission;
  const int32_t bt = f.rt.kv().block_tokens();
  const int32_t positions = f.rt.kv().n_blocks() * bt;
  REQUIRE(positions < stories_model().config().ctx_len);  // the arena, not the model, is the limit
  CHECK(f.rt.context_limit() == positions);
  std::vector<int32_t> prompt(static_cast<size_t>(positions / 2), 300);
  prompt[0] = 1;
  // Each reserves prompt + max_tokens = 3/4 of the cache: one at a time.
  const auto big = request(prompt, positions / 4);
  CHECK(f.rt.admission(big) == Admission::Now);
  DecodeResult first;
  daemon::DecodeCallbacks cb;
  cb.on_finished = [](int64_t, const DecodeResult& r, void* u) { *static_cast<DecodeResult*>(u) = r; };
  cb.user = &first;
  REQUIRE(f.rt.submit(big, cb).has_value());
  CHECK(f.rt.admission(big) == Admission::Wait);
  auto refused = f.rt.submit(big, {});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == SPECD_E_KV_FULL);
  // A small one fits beside it.
  CHECK(f.rt.admission(request({1}, bt)) == Admission::Now);
  while (!f.rt.idle()) f.rt.step();
  CHECK(first.finish_reason != SPECD_FINISH_ERROR);
  CHECK(f.rt.kv().n_free_blocks() == f.rt.kv().n_blocks());
  CHECK(f.rt.admission(big) == Admission::Now);
  // The longest prompt runs, one more is a named context error at once (never a wait).
  std::vector<int32_t> longest(static_cast<size_t>(positions - 1), 300);
  longest[0] = 1;
  const auto r = f.run(request(longest, 100));
  CHECK(r.finish_reason == SPECD_FINISH_CONTEXT);
  CHECK_FALSE(r.tokens.empty());
  longest.push_back(300);
  CHECK(f.rt.admission(request(longest, 1)) == Admission::Refuse);
  auto too_long = f.rt.submit(request(longest, 1), {});
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().code == SPECD_E_CONTEXT);
  CHECK(too_long.error().message.find(std::to_string(positions)) != std::string::npos);
}

TEST_CASE("a decoder that commits past its KV reservation fails alone; the others run to the end") {
  daemon::RuntimeLimits lim;
  lim.kv_bytes = size_t{1} << 20;
  RuntimeFixture f(lim);
  // Reservations that together fill the cache: had the bad one taken more, the good one would starve.
  const int32_t half = f.rt.kv().n_blocks() / 2 * f.rt.kv().block_tokens();
  const auto good_req = request({1}, half - 1);
  const auto expect = f.run(good_req).tokens;
  struct Out {
    DecodeResult good, bad;
  } out;
  daemon::DecodeCallbacks good_cb, bad_cb;
  good_cb.on_finished = [](int64_t, const DecodeResult& r, void* u) { static_cast<Out*>(u)->good = r; };
  bad_cb.on_finished = [](int64_t, const DecodeResult& r, void* u) { static_cast<Out*>(u)->bad = r; };
  good_cb.user = bad_cb.user = &out;
  REQUIRE(f.rt.submit(request({1}, half - 1, "misbehave", R"({"mode":"overcommit"})"), bad_cb).has_value());
  REQUIRE(f.rt.submit(good_req, good_cb).has_value());
  while (!f.rt.idle()) f.rt.step();
  CHECK(out.bad.finish_reason == SPECD_FINISH_ERROR);
  CHECK(out.bad.error.code == SPECD_E_KV_FULL);
  CHECK(out.bad.error.message.find("misbehave") != std::string::npos);
  CHECK(out.good.finish_reason != SPECD_FINISH_ERROR);
  CHECK(out.good.tokens == expect);
  CHECK(f.rt.kv().n_free_blocks() == f.rt.kv().n_blocks());
}

// Each emit's text reaches on_tokens once, decoded by the runtime: without stop strings every call's
// text is the tokenizer's pieces of exactly that call's tokens; with them the texts together are the
// output up to the stop string, which is left out (daemon/stop_strings.h).
TEST_CASE("on_tokens gets each emit's text: the pieces of exactly those tokens, or up to a stop string") {
  struct Seen {
    std::vector<int32_t> tokens;
    std::vector<std::string> texts;
    std::vector<std::vector<int32_t>> calls;
  };
  const auto on_tokens = [](int64_t, const int32_t* t, int32_t n, std::string_view text, void* u) {
    auto* s = static_cast<Seen*>(u);
    s->calls.emplace_back(t, t + n);
    s->tokens.insert(s->tokens.end(), t, t + n);
    s->texts.emplace_back(text);
  };
  const auto& tok = stories_model().tokenizer();
  const auto prompt = tok.encode("The cat sat on the mat. The cat sat on the mat. The cat", true);
  const std::string prompt_text = tok.decode(prompt);
  std::string stop;  // from the middle of the text generated without stop strings
  for (const bool with_stop : {false, true}) {
    RuntimeFixture f;
    auto req = request(prompt, 120, "ngram");
    if (with_stop) req.stop_strings = {"never said", stop};
    Seen seen;
    daemon::DecodeCallbacks cb;
    cb.on_tokens = on_tokens;
    cb.on_finished = [](int64_t, const daemon::DecodeResult&, void*) {};
    cb.user = &seen;
    REQUIRE(f.rt.submit(req, cb).has_value());
    while (!f.rt.idle()) f.rt.step();
    REQUIRE(!seen.calls.empty());
    if (!with_stop) CHECK(std::any_of(seen.calls.begin(), seen.calls.end(), [](const auto& c) { return c.size() > 1; }));
    int32_t prev = prompt.back();
    std::string all;
    for (size_t i = 0; i < seen.calls.size(); ++i) {
      std::string expect;
      for (int32_t t : seen.calls[i]) {
        expect += tok.piece(prev, t);
        prev = t;
      }
      if (!with_stop) CHECK(seen.texts[i] == expect);
      all += seen.texts[i];
    }
    std::vector<int32_t> ids = prompt;
    ids.insert(ids.end(), seen.tokens.begin(), seen.tokens.end());
    const std::string generated = tok.decode(ids).substr(prompt_text.size());
    if (!with_stop) {
      CHECK(all == generated);
      REQUIRE(all.size() > 40);
      stop = all.substr(all.size() / 2, 6);
      continue;
    }
    const size_t at = generated.find(stop);
    REQUIRE(at != std::string::npos);
    CHECK(all == generated.substr(0, at));  // everything before the stop string, none of it
    CHECK(at + stop.size() > generated.size() - tok.piece(ids[ids.size() - 2], ids.back()).size());  // the last token completed it
  }
}

namespace {

// Runs steps, after a warm-up of 40, and counts the heap allocations of the steady state: steps whose
// row count stays within the most rows any earlier step had. A step with more rows than ever may grow
// the batch and the forward's buffers once (they keep their high-water marks; auto's k can reach a new
// one whenever it likes, earlier or later depending on the machine's timings). The same holds for the
// token events a step hands out (step returns how many): the engine loop's spares grow to the most one
// step ever needed. Returns the allocations and fills checked with how many steps were steady.
long steady_state_allocations(RuntimeFixture& f, const std::function<size_t()>& step, int* checked) {
  int32_t most_rows = 0;
  size_t most_events = 0;
  for (int i = 0; i < 40; ++i) {
    most_events = std::max(most_events, step());
    most_rows = std::max(most_rows, f.rt.last_step_rows());
  }
  long allocations = 0;
  *checked = 0;
  for (int i = 0; i < 40; ++i) {
    const long before = allocation_count();
    const size_t events = step();
    const long allocated = allocation_count() - before;
    const bool steady = f.rt.last_step_rows() <= most_rows && events <= most_events;
    most_events = std::max(most_events, events);
    most_rows = std::max(most_rows, f.rt.last_step_rows());
    if (!steady) continue;
    allocations += allocated;
    ++*checked;
  }
  return allocations;
}

}  // namespace

TEST_CASE("steady-state steps of ar and ngram allocate nothing") {
  for (const char* dec : {"ar", "ngram"}) {
    RuntimeFixture f;
    auto id = f.rt.submit(request(golden_prefix(20), 400, dec), {});
    REQUIRE(id.has_value());
    int checked = 0;
    CHECK_MESSAGE(steady_state_allocations(f, [&] { f.rt.step(); return size_t{0}; }, &checked) == 0, dec);
    CHECK_MESSAGE(checked >= 30, dec << ": " << checked << " of 40 steps were steady");
    REQUIRE(f.rt.active() == 1);
  }
}

// The daemon's engine thread hands each emit to the loop thread as an EngineEvent (engine_loop.cpp's
// on_tokens) and gets handled events back to reuse. One iteration here is what the worker does per
// step on the engine thread: step, move the events out, and take handled ones back as spares (the
// mutex-guarded hand-over between the threads moves them through vectors reserved at start).
TEST_CASE("steady-state steps with the engine loop's token events allocate nothing") {
  namespace wd = daemon::worker_detail;
  for (const char* dec : {"ar", "ngram"}) {
    RuntimeFixture f;
    wd::ModelSlot slot;
    std::vector<daemon::EngineEvent> out, handled, spare;
    out.reserve(16);
    handled.reserve(wd::kSpareEvents);
    spare.reserve(wd::kSpareEvents);
    wd::Live l;
    l.out = &out;
    l.spare = &spare;
    l.slot = &slot;
    // ngram with a fixed k: what auto chooses depends on the machine's timings, and once (CI, a quiet
    // machine) this test saw 3 allocations with auto that no run here could reproduce; the test above
    // keeps auto.
    const std::string options = std::string(dec) == "ngram" ? R"({"k": "4"})" : "{}";
    auto id = f.rt.submit(request(golden_prefix(20), 400, dec, options),
                          daemon::DecodeCallbacks{wd::on_tokens, wd::on_finished, &l});
    REQUIRE(id.has_value());
    size_t tokens = 0;
    const auto iteration = [&] {
      ++slot.steps;
      f.rt.step();
      const size_t events = out.size();
      for (auto& e : out) {
        tokens += e.tokens.size();
        handled.push_back(std::move(e));
      }
      out.clear();
      wd::keep_spare(&handled, &spare);
      return events;
    };
    int checked = 0;
    CHECK_MESSAGE(steady_state_allocations(f, iteration, &checked) == 0, std::string(dec));
    CHECK_MESSAGE(checked >= 30, dec << ": " << checked << " of 40 steps were steady");
    CHECK(tokens > 40);
    REQUIRE(f.rt.active() == 1);
  }
}
