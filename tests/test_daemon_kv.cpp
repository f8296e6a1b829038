// The daemon with a KV cache smaller than the model's context: Welcome tells the real prompt
// limit, requests that fit an empty cache wait their turn instead of failing, and one that never
// fits is refused at once.
#include "engine/kv_cache.h"
#include "tests/daemon_harness.h"
#include "tests/engine_fixture.h"

#include <map>
#include <vector>

using namespace specd;
using namespace specd::test;

namespace {

const std::string kKvBytes = std::to_string(1 << 20);

// Positions the daemon's one model can hold with --kv-bytes kKvBytes (the runtime's arena).
int32_t kv_positions() {
  const auto& c = stories_model().config();
  engine::KvCacheOptions o;
  o.max_bytes = size_t{1} << 20;
  const engine::KvCache kv(c.n_layers, c.kv_dim(), c.ctx_len, o);
  return std::min(c.ctx_len, kv.n_blocks() * kv.block_tokens());
}

GenParams ids_request(int32_t prompt_len, int32_t max_tokens) {
  GenParams p;
  p.prompt_ids.assign(static_cast<size_t>(prompt_len), 300);
  p.prompt_ids[0] = 1;
  p.max_tokens = max_tokens;
  return p;
}

std::vector<uint8_t> cancel_frame(uint64_t rid) {
  return simple_frame(rid, wire::Body::Cancel, [](fb::FlatBufferBuilder& b) { return wire::CreateCancel(b); });
}

// What one connection saw, in arrival order: per request, the index of its first TokenEvent and
// of its ending (Finished or Error), and how it ended.
struct Timeline {
  std::map<uint64_t, int> first_token, end;
  std::map<uint64_t, std::string> reason;  // Finished.reason, or "error:NAME"
  std::map<uint64_t, int64_t> run_id;
};

Timeline read_until_ended(RawClient& c, size_t n_requests) {
  Timeline t;
  for (int i = 0; t.end.size() < n_requests; ++i) {
    const auto f = c.recv(60000);
    REQUIRE_MESSAGE(!f.empty(), "only " << t.end.size() << " of " << n_requests << " requests ended");
    const wire::Envelope* e = env_of(f);
    const uint64_t rid = e->request_id();
    if (e->body_as_TokenEvent()) {
      t.first_token.emplace(rid, i);
    } else if (const auto* fin = e->body_as_Finished()) {
      t.end[rid] = i;
      t.reason[rid] = fin->reason() ? fin->reason()->str() : "";
      t.run_id[rid] = fin->run_id();
    } else if (const auto* err = e->body_as_Error()) {
      t.end[rid] = i;
      t.reason[rid] = "error:" + (err->name() ? err->name()->str() : "");
    }
  }
  return t;
}

}  // namespace

TEST_CASE("serve: Welcome.max_prompt_tokens is what an empty KV cache holds; that many run, one more is refused") {
  DaemonProcess d({"--kv-bytes", kKvBytes});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const int32_t positions = kv_positions();
  REQUIRE(positions < stories_model().config().ctx_len);  // the cache, not the model, is the limit here
  RawClient c(d.socket(), RawClient::kNoHello);  // the Welcome is what this test reads
  REQUIRE(c.send(hello_frame()));
  const auto f = c.recv();
  const auto* w = env_of(f)->body_as_Welcome();
  REQUIRE(w != nullptr);
  const int32_t mpt = w->max_prompt_tokens();
  CHECK(mpt == positions - 1);

  REQUIRE(c.send(generate_frame(1, ids_request(mpt, 16))));
  const GenOutcome ok = collect(c, 1);
  CHECK_MESSAGE(ok.finished, ok.error_name << ": " << ok.error_message);
  CHECK(ok.prompt_tokens == mpt);
  CHECK(ok.generated_tokens >= 1);

  REQUIRE(c.send(generate_frame(2, ids_request(mpt + 1, 16))));
  const GenOutcome over = collect(c, 2);
  CHECK(over.error_code == SPECD_E_CONTEXT);
  // The message states what the prompt needed and what the cache holds.
  CHECK(over.error_message.find(std::to_string(mpt + 1)) != std::string::npos);
  CHECK(over.error_message.find(std::to_string(positions)) != std::string::npos);
}

TEST_CASE("serve: requests that fit an empty KV cache but not together wait in order; a never-fitting one is refused at once") {
  DaemonProcess d({"--kv-bytes", kKvBytes});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const int32_t positions = kv_positions();
  // Each reserves prompt + max_tokens, over half the cache: they can only run one at a time.
  const int32_t prompt = positions * 3 / 8, gen = positions * 3 / 8;
  constexpr uint64_t kFitting = 6, kNever = 7, kCanceled = 8;
  RawClient c(d.socket());
  std::vector<uint8_t> burst;
  auto add = [&](std::vector<uint8_t> frame) { burst.insert(burst.end(), frame.begin(), frame.end()); };
  for (uint64_t rid = 1; rid <= kFitting; ++rid) add(generate_frame(rid, ids_request(prompt, gen)));
  add(generate_frame(kNever, ids_request(positions, 1)));
  add(generate_frame(kCanceled, ids_request(prompt, gen)));
  add(cancel_frame(kCanceled));
  REQUIRE(c.send(burst));
  const Timeline t = read_until_ended(c, kCanceled);

  for (uint64_t rid = 1; rid <= kFitting; ++rid) {
    CAPTURE(rid);
    CHECK((t.reason.at(rid) == "length" || t.reason.at(rid) == "stop"));
    REQUIRE(t.first_token.count(rid));
    if (rid > 1) {
      // First come, first served, and never two at once: each starts after the one before ended.
      CHECK(t.first_token.at(rid) > t.end.at(rid - 1));
    }
  }
  CHECK(t.reason.at(kNever) == "error:CONTEXT");
  CHECK(t.end.at(kNever) < t.first_token.at(2));  // refused while the first still ran
  CHECK(t.reason.at(kCanceled) == "cancel");
  CHECK_FALSE(t.first_token.count(kCanceled));

  // One run row per request, each with its ending.
  d.signal(SIGTERM);
  REQUIRE_MESSAGE(d.wait_exit() == 0, d.log());
  const auto runs = read_runs(d.db());
  CHECK(runs.size() == kCanceled);
  for (const auto& [rid, id] : t.run_id) {
    CAPTURE(rid);
    REQUIRE(runs.count(id));
    CHECK(runs.at(id).finish_reason == t.reason.at(rid));
  }
  size_t refused = 0;
  for (const auto& [id, r] : runs) refused += r.finish_reason == "error" && r.error.rfind("CONTEXT", 0) == 0;
  CHECK(refused == 1);
}

TEST_CASE("serve: a request no cache could hold is refused at once even while max_concurrent are running") {
  DaemonProcess d({"--kv-bytes", kKvBytes, "--max-concurrent", "1"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const int32_t positions = kv_positions();
  RawClient c(d.socket());
  std::vector<uint8_t> burst = generate_frame(1, ids_request(positions / 2, positions / 2 - 1));
  const auto never = generate_frame(2, ids_request(positions, 1));
  burst.insert(burst.end(), never.begin(), never.end());
  REQUIRE(c.send(burst));
  const Timeline t = read_until_ended(c, 2);
  CHECK(t.reason.at(2) == "error:CONTEXT");
  CHECK(t.end.at(2) < t.end.at(1));
}
