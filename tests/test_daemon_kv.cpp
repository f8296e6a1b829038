// The daemon with a KV cache smaller than the model's context: Welcome tells the real prompt
// limit, requests that fit an empty cache wait their turn instead of failing, and one that never
// fits is refused at once.
#include "engine/kv_cache.h"
#include "tests/daemon_harness.h"
#include "tests/engine_fixture.h"
#include "tests/test_support.h"

#include <nlohmann/json.hpp>

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

// Tokens per KV block in that arena.
int32_t kv_block_tokens() {
  const auto& c = stories_model().config();
  engine::KvCacheOptions o;
  o.max_bytes = size_t{1} << 20;
  return engine::KvCache(c.n_layers, c.kv_dim(), c.ctx_len, o).block_tokens();
}

nlohmann::json specctl_status_json(const DaemonProcess& d) {
  std::string out;
  REQUIRE(run_command(build_root() + "/clients/specctl --socket " + d.socket() + " status --json", &out) == 0);
  return nlohmann::json::parse(out);
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

TEST_CASE("serve: specctl status shows the KV blocks a running request reserved, and none once it ended") {
  DaemonProcess d({"--kv-bytes", kKvBytes, "--plugin-dir", build_root() + "/plugins", "--plugin-dir",
                   build_root() + "/tests/plugins"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  GenParams p = ids_request(10, 40);
  p.decoder = "misbehave";
  p.options = R"({"mode": "slow"})";  // 80 ms a step: still running while specctl asks
  REQUIRE(c.send(generate_frame(1, p)));
  REQUIRE(env_of(c.recv_for(1))->body_type() == wire::Body::TokenEvent);  // admitted and running
  const int32_t want = (10 + 40 + kv_block_tokens() - 1) / kv_block_tokens();  // prompt + max_tokens, in blocks
  const nlohmann::json running = specctl_status_json(d);
  const nlohmann::json& m = running["models"][0];
  CHECK(m["kv_blocks_reserved"] == want);
  CHECK(running["kv_blocks_reserved"] == want);
  CHECK(m["kv_blocks_total"] == running["kv_blocks_total"]);  // one model: all of the cache
  const int used = m["kv_blocks_total"].get<int>() - m["kv_blocks_free"].get<int>();
  CHECK(used >= 1);     // the prompt is in
  CHECK(used <= want);  // and it never holds more than it reserved
  std::string text;
  REQUIRE(run_command(build_root() + "/clients/specctl --socket " + d.socket() + " status", &text) == 0);
  CHECK_MESSAGE(text.find(std::to_string(want) + " reserved by running requests") != std::string::npos, text);

  REQUIRE(c.send(cancel_frame(1)));
  CHECK(collect(c, 1).reason == "cancel");
  const nlohmann::json after = specctl_status_json(d);
  CHECK(after["models"][0]["kv_blocks_reserved"] == 0);
  CHECK(after["kv_blocks_reserved"] == 0);
  CHECK(after["kv_blocks_free"] == after["kv_blocks_total"]);
}
