// The daemon end to end: a real `specd serve` on a temp socket and run log, driven with raw frames.
#include "daemon/decode_runtime.h"
#include "daemon/early_stop.h"
#include "daemon/plugin_loader.h"
#include "daemon/run_log.h"
#include "tests/daemon_harness.h"
#include "tests/engine_fixture.h"

#include <nlohmann/json.hpp>
#include <uv.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <grp.h>
#include <sys/stat.h>

using namespace specd;
using namespace specd::test;

namespace {

// Greedy ids in-process, with the daemon's request shape (BOS + text, stops at EOS or BOS).
std::vector<int32_t> reference_ids(const std::string& prompt, int32_t max_tokens) {
  static daemon::PluginRegistry plugins;
  static kernels::ThreadPool pool(1);
  static bool loaded = plugins.load_file(build_root() + "/plugins/ar.so").has_value();
  REQUIRE(loaded);
  static daemon::DecodeRuntime rt(stories_model(), plugins, pool);
  daemon::DecodeRequest r;
  r.prompt = stories_model().tokenizer().encode(prompt, true);
  r.max_tokens = max_tokens;
  r.stop_tokens = {stories_model().config().eos, stories_model().config().bos};
  auto res = rt.run(r);
  REQUIRE(res.has_value());
  return res->tokens;
}

std::vector<uint8_t> cancel_frame(uint64_t rid) {
  return simple_frame(rid, wire::Body::Cancel, [](fb::FlatBufferBuilder& b) { return wire::CreateCancel(b); });
}

void hello(RawClient& c) {
  REQUIRE(c.send(hello_frame()));
  const auto f = c.recv();
  const auto* w = env_of(f)->body_as_Welcome();
  REQUIRE(w != nullptr);
  CHECK(w->protocol_version() == 1);
  CHECK(w->max_frame_bytes() > 0);
}

// The connection's next frame is an Error with code whose message holds phrase, and then the daemon closes it.
void expect_refused(RawClient& c, int32_t code, const std::string& phrase) {
  const auto f = c.recv();
  REQUIRE(!f.empty());
  const auto* e = env_of(f)->body_as_Error();
  REQUIRE(e != nullptr);
  CHECK(e->code() == code);
  CHECK_MESSAGE(e->message()->str().find(phrase) != std::string::npos, e->message()->str());
  CHECK(c.closed_by_peer());
}

// Runs after a failure case: the daemon still answers a good request on a fresh connection.
void check_still_serving(DaemonProcess& d) {
  RawClient c(d.socket());
  GenParams p;
  p.max_tokens = 8;
  REQUIRE(c.send(generate_frame(99, p)));
  const GenOutcome o = collect(c, 99);
  CHECK(o.finished);
  CHECK(o.ids == reference_ids(p.prompt_text, 8));
}

// Stops the daemon with SIGTERM, expects exit 0, and returns every run-log row by id.
std::map<int64_t, daemon::RunRecord> stop_and_read_runs(DaemonProcess& d) {
  d.signal(SIGTERM);
  REQUIRE_MESSAGE(d.wait_exit() == 0, d.log());
  return read_runs(d.db());
}

// Background requests that keep every engine step busy (long prompts, long sampled outputs).
void start_load(RawClient& c, int n, uint64_t first_rid) {
  for (int i = 0; i < n; ++i) {
    GenParams p;
    p.prompt_ids.assign(300, 300);
    p.prompt_ids[0] = 1;
    p.max_tokens = 400;
    p.temperature = 1.0f;
    p.seed = static_cast<uint64_t>(i);
    REQUIRE(c.send(generate_frame(first_rid + static_cast<uint64_t>(i), p)));
  }
}

// Waits for the first TokenEvent of rid and leaves it to be read again.
void wait_first_token(RawClient& c, uint64_t rid) {
  auto f = c.recv_for(rid);
  REQUIRE(!f.empty());
  REQUIRE_MESSAGE(env_of(f)->body_type() == wire::Body::TokenEvent, "request ended before its first token");
  c.unread(rid, std::move(f));
}

}  // namespace

TEST_CASE("serve: Hello gets Welcome; a greedy Generate equals `specd generate --json`, streamed and whole") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const std::string prompt = "Once upon a time, a little girl";
  std::string out;
  REQUIRE(run_command(build_root() + "/daemon/specd generate --model " + model_path("stories260K.gguf") + " --prompt '" +
                          prompt + "' --max-tokens 120 --json --plugin-dir " + build_root() + "/plugins",
                      &out) == 0);
  const auto j = nlohmann::json::parse(out);
  const std::vector<int32_t> expected = j["token_ids"].get<std::vector<int32_t>>();

  RawClient c(d.socket(), RawClient::kNoHello);
  hello(c);
  GenParams p;
  p.prompt_text = prompt;
  p.max_tokens = 120;
  REQUIRE(c.send(generate_frame(7, p)));
  const GenOutcome o = collect(c, 7);
  REQUIRE_MESSAGE(o.finished, o.error_message);
  CHECK(o.ids == expected);
  CHECK(o.streamed_ids == expected);
  CHECK(o.text == j["text"].get<std::string>());
  CHECK(o.streamed_text == o.text);
  CHECK(o.reason == j["finish_reason"].get<std::string>());
  CHECK(o.prompt_tokens == j["prompt_tokens"].get<int32_t>());
  CHECK(o.generated_tokens == static_cast<int32_t>(expected.size()));
  CHECK(o.forwards == j["forwards"].get<int32_t>());
  CHECK(o.token_events > 1);

  p.stream = false;  // the same request unstreamed: only Finished
  REQUIRE(c.send(generate_frame(8, p)));
  const GenOutcome u = collect(c, 8);
  CHECK(u.token_events == 0);
  CHECK(u.ids == expected);

  const auto rows = stop_and_read_runs(d);
  REQUIRE(rows.count(o.run_id) == 1);
  const daemon::RunRecord& r = rows.at(o.run_id);
  CHECK(r.model == "stories");
  CHECK(r.decoder == "ar");
  CHECK(r.generated_tokens == o.generated_tokens);
  CHECK(r.prompt_tokens == o.prompt_tokens);
  CHECK(r.forwards == o.forwards);
  CHECK(r.finish_reason == o.reason);
  CHECK(r.peer_pid == ::getpid());
  CHECK(r.peer_uid == static_cast<int32_t>(::getuid()));
  CHECK(rows.size() == 2);
}

// The text goes out once, as the runtime decoded it for the stop-string scan: streamed, in Finished
// and in-process it is the same bytes, and it ends where the stop string begins (the match left out).
TEST_CASE("serve: with stop strings the streamed text, Finished's text and the in-process decode agree") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const auto& tok = stories_model().tokenizer();
  GenParams p;
  p.prompt_text = "The cat sat on the mat. The cat sat on the mat. The cat";
  p.decoder = "ngram";  // several tokens per TokenEvent
  p.max_tokens = 120;
  const std::vector<int32_t> prompt = tok.encode(p.prompt_text, true);
  const auto text_of = [&](const std::vector<int32_t>& ids) {
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), ids.begin(), ids.end());
    return tok.decode(all).substr(tok.decode(prompt).size());
  };
  RawClient c(d.socket());
  REQUIRE(c.send(generate_frame(1, p)));
  const GenOutcome whole = collect(c, 1);
  REQUIRE_MESSAGE(whole.finished, whole.error_message);
  REQUIRE(whole.text.size() > 40);
  const std::string stop = whole.text.substr(whole.text.size() / 2, 6);

  p.stop = {"never said", stop};
  REQUIRE(c.send(generate_frame(2, p)));
  const GenOutcome o = collect(c, 2);
  REQUIRE_MESSAGE(o.finished, o.error_message);
  CHECK(o.reason == "stop");
  CHECK(o.streamed_ids == o.ids);
  CHECK(o.streamed_text == o.text);
  // The text ends where the stop string began; it is left out (daemon/stop_strings.h), its tokens are not.
  const std::string generated = text_of(o.ids);
  const size_t at = generated.find(stop);
  REQUIRE(at != std::string::npos);
  CHECK(o.text == generated.substr(0, at));
  CHECK(generated.size() - (at + stop.size()) < 16);  // nothing generated after the step that completed it
  CHECK(at == whole.text.find(stop));
  CHECK(whole.text.compare(0, o.text.size(), o.text) == 0);
}

TEST_CASE("serve: 16 concurrent clients with mixed decoders and sampling; every request has its run row") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily wanted to", "One day, a big"};
  std::vector<std::unique_ptr<RawClient>> clients;
  std::vector<GenParams> params;
  for (int i = 0; i < 16; ++i) {
    GenParams p;
    p.prompt_text = prompts[static_cast<size_t>(i) % prompts.size()];
    p.max_tokens = 40 + 10 * (i % 7);
    p.decoder = i % 2 ? "ngram" : "ar";
    if (i % 2) p.options = R"({"k":"4"})";
    if (i % 4 == 3) {  // sampled: a quarter of the clients
      p.temperature = 0.8f;
      p.top_k = 40;
      p.seed = static_cast<uint64_t>(i);
    }
    clients.push_back(std::make_unique<RawClient>(d.socket()));
    params.push_back(p);
  }
  // Every Generate goes out before any answer is read, so the daemon batches them together.
  for (size_t i = 0; i < clients.size(); ++i) REQUIRE(clients[i]->send(generate_frame(i + 1, params[i])));
  std::vector<GenOutcome> outs;
  for (size_t i = 0; i < clients.size(); ++i) outs.push_back(collect(*clients[i], i + 1));
  for (size_t i = 0; i < outs.size(); ++i) {
    CAPTURE(i);
    REQUIRE_MESSAGE(outs[i].finished, outs[i].error_message);
    CHECK(outs[i].streamed_ids == outs[i].ids);
    CHECK(outs[i].generated_tokens == static_cast<int32_t>(outs[i].ids.size()));
    if (params[i].temperature == 0.0f) CHECK(outs[i].ids == reference_ids(params[i].prompt_text, params[i].max_tokens));
  }
  const auto rows = stop_and_read_runs(d);
  CHECK(rows.size() == 16);
  for (size_t i = 0; i < outs.size(); ++i) {
    CAPTURE(i);
    REQUIRE(rows.count(outs[i].run_id) == 1);
    const daemon::RunRecord& r = rows.at(outs[i].run_id);
    CHECK(r.decoder == params[i].decoder);
    CHECK(r.decoder_options == (params[i].options.empty() ? "{}" : params[i].options));
    CHECK(r.generated_tokens == outs[i].generated_tokens);
    CHECK(r.prompt_tokens == outs[i].prompt_tokens);
    CHECK(r.forwards == outs[i].forwards);
    CHECK(r.finish_reason == outs[i].reason);
    CHECK(r.error.empty());
    CHECK(r.peer_pid == ::getpid());
  }
}

TEST_CASE("serve: Cancel mid-stream ends only that request, with reason cancel") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  start_load(c, 6, 100);
  GenParams p;
  p.max_tokens = 1500;
  p.temperature = 1.0f;
  p.seed = 3;
  REQUIRE(c.send(generate_frame(1, p)));
  wait_first_token(c, 1);
  REQUIRE(c.send(cancel_frame(1)));
  const GenOutcome o = collect(c, 1);
  REQUIRE(o.finished);
  CHECK(o.reason == "cancel");
  CHECK(o.ids.size() < 1500);
  for (uint64_t rid = 100; rid < 106; ++rid) CHECK(collect(c, rid).reason != "cancel");
  REQUIRE(c.send(cancel_frame(12345)));  // an unknown id is ignored
  check_still_serving(d);
  const auto rows = stop_and_read_runs(d);
  REQUIRE(rows.count(o.run_id) == 1);
  CHECK(rows.at(o.run_id).finish_reason == "cancel");
  CHECK(rows.at(o.run_id).generated_tokens == static_cast<int32_t>(o.ids.size()));
}

TEST_CASE("serve: a client that closes or is killed mid-stream cancels its requests; the daemon keeps serving") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient load(d.socket());
  start_load(load, 4, 100);
  {
    RawClient c(d.socket());
    GenParams p;
    p.max_tokens = 1500;
    p.temperature = 1.0f;
    p.seed = 3;
    REQUIRE(c.send(generate_frame(1, p)));
    wait_first_token(c, 1);
  }  // closed here, mid-stream
  // A child process that is SIGKILLed while its request streams.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  GenParams p;
  p.max_tokens = 1500;
  p.temperature = 1.0f;
  p.seed = 3;
  const auto frame = generate_frame(1, p);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = connect_to(d.socket());
    std::vector<uint8_t> out = hello_frame();
    out.insert(out.end(), frame.begin(), frame.end());
    if (fd < 0 || ::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) ::_exit(1);
    const auto read_n = [fd](uint8_t* p, size_t n) {
      for (size_t got = 0; got < n;) {
        const ssize_t r = ::read(fd, p + got, n - got);
        if (r <= 0) return false;
        got += static_cast<size_t>(r);
      }
      return true;
    };
    uint8_t len[4];  // skip the Welcome, then wait for the first byte of the stream
    std::vector<uint8_t> welcome;
    if (!read_n(len, 4)) ::_exit(1);
    welcome.resize(len[0] | len[1] << 8 | len[2] << 16 | static_cast<uint32_t>(len[3]) << 24);
    uint8_t b;
    if (read_n(welcome.data(), welcome.size()) && read_n(&b, 1) && ::write(ready[1], "x", 1) == 1) ::pause();
    ::_exit(1);
  }
  char x;
  REQUIRE(::read(ready[0], &x, 1) == 1);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  check_still_serving(d);
  for (uint64_t rid = 100; rid < 104; ++rid) CHECK(collect(load, rid).finished);
  const auto rows = stop_and_read_runs(d);
  CHECK(rows.size() == 7);  // 4 load + 2 abandoned + 1 check
  int cancelled = 0;
  for (const auto& [id, r] : rows) cancelled += r.finish_reason == "cancel";
  CHECK(cancelled == 2);
}

TEST_CASE("serve: broken framing closes only that connection") {
  DaemonProcess d({"--max-frame-bytes", "4096"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient bystander(d.socket());
  {
    RawClient c(d.socket());  // half a frame, then close
    auto f = generate_frame(1, GenParams{});
    f.resize(f.size() / 2);
    REQUIRE(c.send(f));
  }
  const auto expect_protocol_close = [&](const std::vector<uint8_t>& bytes, const char* what) {
    CAPTURE(what);
    RawClient c(d.socket());
    REQUIRE(c.send(bytes));
    const auto f = c.recv();
    if (!f.empty()) {
      const auto* e = env_of(f)->body_as_Error();
      REQUIRE(e != nullptr);
      CHECK(e->code() == SPECD_E_PROTOCOL);
    }
    CHECK(c.closed_by_peer());
  };
  expect_protocol_close({0x01, 0x10, 0x00, 0x00}, "oversize (4097 bytes)");
  expect_protocol_close({0, 0, 0, 0}, "empty frame");
  std::mt19937 rng(42);
  std::vector<uint8_t> junk(64 + 4);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  junk[0] = 64, junk[1] = junk[2] = junk[3] = 0;  // a plausible length, garbage body
  expect_protocol_close(junk, "unverifiable");
  junk.assign(8192, 0);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  expect_protocol_close(junk, "random bytes");
  // The bystander connection was never disturbed.
  GenParams p;
  p.max_tokens = 8;
  REQUIRE(bystander.send(generate_frame(5, p)));
  CHECK(collect(bystander, 5).finished);
  check_still_serving(d);
}

TEST_CASE("serve: messages the daemon does not accept get an Error and the connection stays usable") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  const auto expect_error = [&](const std::vector<uint8_t>& frame, uint64_t rid, int32_t code) {
    REQUIRE(c.send(frame));
    const auto f = c.recv();
    const wire::Envelope* e = env_of(f);
    CHECK(e->request_id() == rid);
    const auto* err = e->body_as_Error();
    REQUIRE(err != nullptr);
    CHECK(err->code() == code);
  };
  expect_error(simple_frame(3, static_cast<wire::Body>(42), [](fb::FlatBufferBuilder& b) { return wire::CreateCancel(b); }),
               3, SPECD_E_PROTOCOL);  // a union member newer than this daemon
  expect_error(simple_frame(4, wire::Body::Welcome,
                            [](fb::FlatBufferBuilder& b) { return wire::CreateWelcomeDirect(b, 1, "x", 1, 1, 1); }),
               4, SPECD_E_PROTOCOL);
  for (const auto type : {wire::Body::NONE, wire::Body::Generate, wire::Body::Hello, wire::Body::ListRuns}) {
    fb::FlatBufferBuilder b;  // a union type without its table (or none at all)
    b.Finish(wire::CreateEnvelope(b, 5, type, 0));
    expect_error(daemon::frame_bytes(std::span<const uint8_t>(b.GetBufferPointer(), b.GetSize())), 5, SPECD_E_PROTOCOL);
  }
  GenParams p;
  p.max_tokens = 8;
  REQUIRE(c.send(generate_frame(6, p)));
  CHECK(collect(c, 6).finished);
  // A Hello with another protocol version is refused and that connection closed.
  RawClient v(d.socket(), RawClient::kNoHello);
  REQUIRE(v.send(hello_frame(2)));
  const auto f = v.recv();
  REQUIRE(env_of(f)->body_as_Error() != nullptr);
  CHECK(env_of(f)->body_as_Error()->code() == SPECD_E_VERSION);
  CHECK(v.closed_by_peer());
  check_still_serving(d);
}

TEST_CASE("serve: bad requests get named errors and run rows, and the daemon keeps serving") {
  DaemonProcess d({"--max-tokens", "1000"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  const int32_t ctx = stories_model().config().ctx_len;
  struct Case {
    const char* what;
    GenParams p;
    int32_t code;
  };
  std::vector<Case> cases;
  GenParams p;
  p.decoder = "nope";
  cases.push_back({"unknown decoder", p, SPECD_E_UNKNOWN_DECODER});
  p = {};
  p.model = "nope";
  cases.push_back({"unknown model", p, SPECD_E_UNKNOWN_MODEL});
  p = {};
  p.prompt_ids.assign(static_cast<size_t>(ctx) + 10, 300);
  cases.push_back({"prompt over the context", p, SPECD_E_CONTEXT});
  p = {};
  p.max_tokens = 100000;
  cases.push_back({"max_tokens over the limit", p, SPECD_E_LIMIT});
  p = {};
  p.prompt_text = "";
  cases.push_back({"empty prompt", p, SPECD_E_INVALID_ARG});
  p = {};
  p.prompt_ids = {1, 99999};
  cases.push_back({"token id out of range", p, SPECD_E_BAD_TOKEN});
  p = {};
  p.options = R"({"bogus":"1"})";
  cases.push_back({"unknown decoder option", p, SPECD_E_BAD_OPTION});
  p = {};
  p.model = std::string("stories\0x", 9);
  cases.push_back({"a NUL in the model name", p, SPECD_E_INVALID_ARG});
  p = {};
  p.decoder = "ar\n";
  cases.push_back({"a control character in the decoder name", p, SPECD_E_INVALID_ARG});
  for (const char* opts : {R"({"prefill_chunk":" 4"})", R"({"prefill_chunk":"4 "})", R"({"prefill_chunk":"+4"})",
                           R"({"prefill_chunk":4,"prefill_chunk":8})"}) {
    p = {};
    p.options = opts;
    cases.push_back({opts, p, SPECD_E_BAD_OPTION});
  }
  uint64_t rid = 1;
  for (const Case& k : cases) {
    CAPTURE(k.what);
    REQUIRE(c.send(generate_frame(rid, k.p)));
    const GenOutcome o = collect(c, rid++);
    CHECK(!o.finished);
    CHECK(o.error_code == k.code);
    CHECK(o.error_name == error_name(k.code));
    CHECK(!o.error_message.empty());
    if (k.code == SPECD_E_INVALID_ARG && !k.p.model.empty()) CHECK(o.error_message.rfind("model name contains", 0) == 0);
    if (k.code == SPECD_E_INVALID_ARG && !k.p.decoder.empty()) CHECK(o.error_message.rfind("decoder name contains", 0) == 0);
    if (k.code == SPECD_E_BAD_OPTION) CHECK(o.error_message.find(k.p.options.find("bogus") != std::string::npos ? "bogus" : "prefill_chunk") != std::string::npos);
  }
  check_still_serving(d);
  const auto rows = stop_and_read_runs(d);
  CHECK(rows.size() == cases.size() + 1);
  size_t errors = 0;
  for (const auto& [id, r] : rows)
    if (r.finish_reason == "error") {
      ++errors;
      CHECK(r.error.find(": ") != std::string::npos);
      CHECK(r.peer_pid == ::getpid());
    }
  CHECK(errors == cases.size());
}

TEST_CASE("serve: beyond max_concurrent requests wait; beyond max_queued they get SPECD_E_LIMIT") {
  DaemonProcess d({"--max-concurrent", "1", "--max-queued", "1"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  // Request 1 runs for a while (a long prompt and output), so 2 must wait and 3 finds no room,
  // even if the daemon's loop is preempted between the frames.
  start_load(c, 1, 1);
  GenParams p;
  p.max_tokens = 100;
  std::vector<uint8_t> burst = generate_frame(2, p);
  const auto third_frame = generate_frame(3, p);
  burst.insert(burst.end(), third_frame.begin(), third_frame.end());
  REQUIRE(c.send(burst));
  CHECK(collect(c, 3).error_code == SPECD_E_LIMIT);
  CHECK(collect(c, 1).finished);
  CHECK(collect(c, 2).ids == reference_ids("Once upon a time", 100));
}

TEST_CASE("serve: a duplicate in-flight request_id gets its Error after the original's Finished, and no run row") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  start_load(c, 1, 9);
  wait_first_token(c, 9);  // surely in flight
  GenParams p;
  p.max_tokens = 8;
  REQUIRE(c.send(generate_frame(9, p)));
  const GenOutcome original = collect(c, 9);
  CHECK(original.finished);
  const GenOutcome dup = collect(c, 9);
  CHECK(dup.error_code == SPECD_E_PROTOCOL);
  CHECK(dup.error_message.find("already in flight") != std::string::npos);
  const auto rows = stop_and_read_runs(d);
  CHECK(rows.size() == 1);
  CHECK(rows.count(original.run_id) == 1);
}

TEST_CASE("serve: Hello must come first and only once") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  for (const auto& first : {generate_frame(1, GenParams{}),
                            simple_frame(2, wire::Body::StatusRequest, [](fb::FlatBufferBuilder& b) { return wire::CreateStatusRequest(b); })}) {
    RawClient c(d.socket(), RawClient::kNoHello);
    REQUIRE(c.send(first));
    const auto f = c.recv();
    const auto* e = env_of(f)->body_as_Error();
    REQUIRE(e != nullptr);
    CHECK(env_of(f)->request_id() == 0);
    CHECK(e->code() == SPECD_E_PROTOCOL);
    CHECK(e->message()->str().find("must be Hello") != std::string::npos);
    CHECK(c.closed_by_peer());
  }
  RawClient c(d.socket());  // greeted
  REQUIRE(c.send(hello_frame()));
  const auto f = c.recv();
  REQUIRE(env_of(f)->body_as_Error() != nullptr);
  CHECK(env_of(f)->body_as_Error()->code() == SPECD_E_PROTOCOL);
  GenParams p;
  p.max_tokens = 8;
  REQUIRE(c.send(generate_frame(3, p)));
  CHECK(collect(c, 3).finished);  // the connection stays usable
  const auto rows = stop_and_read_runs(d);
  CHECK(rows.size() == 1);  // the Generate sent before Hello made no run
}

TEST_CASE("serve: handshake and idle timeouts free connection slots; a request in flight is not idle") {
  // Five slots: wait_ready's probe may still hold one. Four silent clients then fill the rest.
  DaemonProcess d({"--max-connections", "5", "--handshake-timeout-ms", "300", "--idle-timeout-ms", "700"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::vector<std::unique_ptr<RawClient>> silent;
  for (int i = 0; i < 4; ++i) silent.push_back(std::make_unique<RawClient>(d.socket(), RawClient::kNoHello));
  for (auto& c : silent) {
    const auto f = c->recv(5000);
    REQUIRE(!f.empty());
    const auto* e = env_of(f)->body_as_Error();
    REQUIRE(e != nullptr);
    CHECK(e->code() == SPECD_E_LIMIT);
    CHECK_MESSAGE(e->message()->str().find("handshake_timeout_ms") != std::string::npos, e->message()->str());
    CHECK(c->closed_by_peer());
  }
  RawClient busy(d.socket());
  RawClient idle(d.socket());
  start_load(busy, 1, 1);  // runs longer than the idle timeout on this machine
  const auto f = idle.recv(5000);
  REQUIRE(!f.empty());
  const auto* e = env_of(f)->body_as_Error();
  REQUIRE(e != nullptr);
  CHECK(e->code() == SPECD_E_LIMIT);
  CHECK(e->message()->str().find("idle_timeout_ms") != std::string::npos);
  CHECK(idle.closed_by_peer());
  const GenOutcome o = collect(busy, 1);
  CHECK(o.finished);
}

TEST_CASE("serve: max_requests_per_connection refuses one connection's extra request only") {
  DaemonProcess d({"--max-requests-per-connection", "2", "--max-concurrent", "1", "--max-queued", "8"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient hog(d.socket());
  start_load(hog, 3, 1);
  const GenOutcome third = collect(hog, 3);
  CHECK(third.error_code == SPECD_E_LIMIT);
  CHECK(third.error_message.find("max_requests_per_connection") != std::string::npos);
  RawClient other(d.socket());
  GenParams p;
  p.max_tokens = 8;
  REQUIRE(other.send(generate_frame(1, p)));
  CHECK(collect(other, 1).finished);
  CHECK(collect(hog, 1).finished);
  CHECK(collect(hog, 2).finished);
}

TEST_CASE("serve: StatusRequest and ListRuns") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  GenParams p;
  p.max_tokens = 10;
  p.decoder = "ngram";
  REQUIRE(c.send(generate_frame(1, p)));
  const GenOutcome o = collect(c, 1);
  REQUIRE(o.finished);
  REQUIRE(c.send(simple_frame(2, wire::Body::StatusRequest, [](fb::FlatBufferBuilder& b) { return wire::CreateStatusRequest(b); })));
  const auto sf = c.recv();
  const auto* s = env_of(sf)->body_as_StatusReply();
  REQUIRE(s != nullptr);
  REQUIRE(s->models());
  REQUIRE(s->models()->size() == 1);
  CHECK(s->models()->Get(0)->name()->str() == "stories");
  CHECK(s->models()->Get(0)->ctx_len() == stories_model().config().ctx_len);
  // Where it runs (auto: the CPU here unless a GPU is present) and what its backend holds: at
  // least the KV cache's storage.
  const std::string device = s->models()->Get(0)->device()->str();
  CHECK((device == "cpu" || device.starts_with("cuda:")));
  CHECK(s->models()->Get(0)->device_memory_used() > 0);
  CHECK((device == "cpu") == (s->models()->Get(0)->device_memory_total() == 0));
  std::set<std::string> decoders;
  for (const auto* dec : *s->decoders()) decoders.insert(dec->name()->str());
  CHECK(decoders.count("ar") == 1);
  CHECK(decoders.count("ngram") == 1);
  CHECK(s->connections() == 1);
  CHECK(s->kv_blocks_total() > 0);
  CHECK(s->kv_blocks_free() == s->kv_blocks_total());
  // The row is written by the run log's thread shortly after Finished: poll until it shows.
  const wire::RunRecord* row = nullptr;
  std::vector<uint8_t> lf;
  for (int tries = 0; tries < 100 && !row; ++tries) {
    REQUIRE(c.send(simple_frame(3, wire::Body::ListRuns, [](fb::FlatBufferBuilder& b) {
      return wire::CreateListRunsDirect(b, 10, "ngram");
    })));
    lf = c.recv();
    const auto* list = env_of(lf)->body_as_RunList();
    REQUIRE(list != nullptr);
    if (list->runs() && list->runs()->size() == 1) row = list->runs()->Get(0);
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(row != nullptr);
  CHECK(row->id() == o.run_id);
  for (const int32_t last : {0, -1}) {
    CAPTURE(last);
    REQUIRE(c.send(simple_frame(4, wire::Body::ListRuns, [last](fb::FlatBufferBuilder& b) { return wire::CreateListRuns(b, last); })));
    const auto ef = c.recv();
    const auto* err = env_of(ef)->body_as_Error();
    REQUIRE(err != nullptr);
    CHECK(err->code() == SPECD_E_INVALID_ARG);
  }
  CHECK(row->decoder()->str() == "ngram");
  CHECK(row->generated_tokens() == o.generated_tokens);
}

TEST_CASE("serve: SIGTERM with no grace cancels in-flight runs, logs every one and exits 0") {
  DaemonProcess d({"--drain-grace-s", "0"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::vector<std::unique_ptr<RawClient>> cs;
  for (int i = 0; i < 4; ++i) {
    cs.push_back(std::make_unique<RawClient>(d.socket()));
    start_load(*cs.back(), 1, 1);
  }
  for (auto& c : cs) wait_first_token(*c, 1);
  d.signal(SIGTERM);
  int cancelled = 0;
  for (auto& c : cs) {
    const GenOutcome o = collect(*c, 1);
    CHECK((o.finished || o.error_code != 0));
    cancelled += o.reason == "cancel";
    CHECK(c->closed_by_peer());
  }
  CHECK(cancelled == 4);
  CHECK(connect_to(d.socket()) < 0);  // no longer accepting
  const auto rows = stop_and_read_runs(d);  // SIGTERM again is harmless; exit code 0
  CHECK(rows.size() == 4);
  CHECK(!std::filesystem::exists(d.socket()));
}

TEST_CASE("serve: SIGTERM lets in-flight runs finish within the grace and refuses new ones") {
  DaemonProcess d({"--drain-grace-s", "30"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  start_load(c, 3, 100);  // keeps the drain open while the checks below run
  GenParams p;
  p.max_tokens = 150;
  REQUIRE(c.send(generate_frame(1, p)));
  wait_first_token(c, 1);
  d.signal(SIGTERM);
  // The listener closes as the drain begins: from then on a Generate is refused.
  int fd = -1;
  for (int tries = 0; tries < 500 && (fd = connect_to(d.socket())) >= 0; ++tries) {
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(fd < 0);
  REQUIRE(c.send(generate_frame(2, p)));
  CHECK(collect(c, 2).error_code == SPECD_E_CANCELED);
  const GenOutcome o = collect(c, 1);
  REQUIRE(o.finished);
  CHECK(o.reason != "cancel");
  CHECK(o.ids == reference_ids("Once upon a time", 150));
  for (uint64_t rid = 100; rid < 103; ++rid) CHECK(collect(c, rid).reason != "cancel");
  CHECK(d.wait_exit() == 0);
}

TEST_CASE("serve: a SIGTERM sent the moment the socket first accepts drains and exits 0") {
  // The socket listens before the loop's signal watchers exist; a stop asked for in between was
  // the default action (death, 143). Several starts, each signalled on its first connect.
  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    DaemonProcess d;
    bool connected = false;
    for (int i = 0; i < 200000 && !connected; ++i) {
      const int fd = connect_to(d.socket());
      if (fd >= 0) {
        ::close(fd);
        connected = true;
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
    REQUIRE_MESSAGE(connected, d.log());
    d.signal(SIGTERM);
    CHECK_MESSAGE(d.wait_exit() == 0, d.log());
  }
}

TEST_CASE("serve: stop signals held during start-up are replayed to the loop's watchers") {
  daemon::hold_stop_signals();
  REQUIRE(std::raise(SIGTERM) == 0);  // held, not fatal
  REQUIRE(std::raise(SIGHUP) == 0);   // ignored
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  uv_signal_t term, intr;
  int seen_term = 0, seen_int = 0;
  term.data = &seen_term;
  intr.data = &seen_int;
  REQUIRE(uv_signal_init(&loop, &term) == 0);
  REQUIRE(uv_signal_init(&loop, &intr) == 0);
  auto count = [](uv_signal_t* h, int) { ++*static_cast<int*>(h->data); };
  REQUIRE(uv_signal_start(&term, count, SIGTERM) == 0);
  REQUIRE(uv_signal_start(&intr, count, SIGINT) == 0);
  daemon::replay_held_stop_signals();
  daemon::replay_held_stop_signals();  // once only
  for (int i = 0; i < 100 && seen_term == 0; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(seen_term == 1);
  CHECK(seen_int == 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&term), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&intr), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) std::signal(sig, SIG_DFL);
}

TEST_CASE("serve: socket activation takes a pre-bound listening fd") {
  const std::string dir = temp_dir();
  const std::string act = dir + "/act.sock";
  DaemonProcess d({}, listening_socket(act));
  REQUIRE_MESSAGE(d.wait_ready(act), d.log());
  RawClient c(act, RawClient::kNoHello);
  hello(c);
  GenParams p;
  p.max_tokens = 20;
  REQUIRE(c.send(generate_frame(1, p)));
  CHECK(collect(c, 1).ids == reference_ids("Once upon a time", 20));
  CHECK(!std::filesystem::exists(d.socket()));  // --socket was not bound
  c.close();
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
}

TEST_CASE("serve: start-up checks — a live socket is not stolen, a stale one is replaced, bad config exits 2") {
  DaemonProcess a;
  REQUIRE_MESSAGE(a.wait_ready(), a.log());
  {
    // Same socket path as a: must refuse, not unlink a's socket. (-m, the short --model, also means
    // that no config file is read: getting as far as the socket says so.)
    const std::string cmd = build_root() + "/daemon/specd serve -m s=" + model_path("stories260K.gguf") + " --socket " +
                            a.socket() + " --runlog " + a.dir() + "/other.db --plugin-dir " + build_root() + "/plugins 2>&1";
    std::string out;
    CHECK(run_command(cmd, &out) == 1);
    CHECK(out.find("another daemon") != std::string::npos);
  }
  check_still_serving(a);
  // A stale socket file (bound, nobody listening) is replaced.
  const std::string dir = temp_dir();
  ::close(listening_socket(dir + "/s.sock"));
  DaemonProcess b({"--socket", dir + "/s.sock"});
  REQUIRE_MESSAGE(b.wait_ready(dir + "/s.sock"), b.log());
  // A config error names the file and line.
  const std::string bad = "[limits]\nmax_frame = 1\n";
  write_file(dir + "/bad.toml", std::vector<uint8_t>(bad.begin(), bad.end()));
  std::string out;
  CHECK(run_command(build_root() + "/daemon/specd serve --config " + dir + "/bad.toml 2>&1", &out) == 2);
  CHECK(out.find("bad.toml:2: unknown key 'limits.max_frame'") != std::string::npos);
  // A config file that is not there is named with the reason.
  CHECK(run_command(build_root() + "/daemon/specd serve --config " + dir + "/none.toml 2>&1", &out) != 0);
  CHECK_MESSAGE(out.find("cannot read config file " + dir + "/none.toml: No such file or directory") != std::string::npos, out);
  // Neither a model nor a config, and no service config on this machine: what to give instead.
  if (!std::filesystem::exists("/etc/specd/specd.toml")) {
    CHECK(run_command(build_root() + "/daemon/specd serve --socket " + dir + "/x.sock 2>&1", &out) == 2);
    CHECK_MESSAGE(out.find("no model to serve: give --model NAME=PATH (-m) or --config FILE") != std::string::npos, out);
    CHECK(out.find("--print-config") != std::string::npos);
  }
}

TEST_CASE("serve: no loadable decoder is a start-up failure, not a READY daemon that fails every request") {
  const std::string dir = temp_dir();
  std::filesystem::create_directories(dir + "/empty");
  std::string out;
  // $SPECD_PLUGIN_DIR replaces the built-in directory; --plugin-dir only adds to it.
  const std::string cmd = "SPECD_PLUGIN_DIR=" + dir + "/empty " + build_root() + "/daemon/specd serve --model s=" +
                          model_path("stories260K.gguf") + " --socket " + dir + "/s.sock --runlog " + dir +
                          "/runs.db --plugin-dir " + dir + "/empty2 2>&1";
  CHECK(run_command(cmd, &out) == 1);
  CHECK_MESSAGE(out.find("no decoder could be loaded from the plugin directories (" + dir + "/empty2, " + dir + "/empty)") !=
                    std::string::npos, out);
  CHECK_FALSE(std::filesystem::exists(dir + "/s.sock"));  // nothing left listening
  // An unknown decoder's error names the ones that are loaded.
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  GenParams p;
  p.decoder = "nope";
  REQUIRE(c.send(generate_frame(1, p)));
  const GenOutcome o = collect(c, 1);
  CHECK(o.error_name == "UNKNOWN_DECODER");
  CHECK_MESSAGE(o.error_message.find("unknown decoder 'nope' (loaded: ") != std::string::npos, o.error_message);
  CHECK_MESSAGE(o.error_message.find("ar") != std::string::npos, o.error_message);
}

TEST_CASE("serve: SIGHUP rescans the plugin directories") {
  namespace fs = std::filesystem;
  const std::string plugins = temp_dir();
  fs::copy_file(build_root() + "/plugins/ar.so", plugins + "/ar.so");
  ::setenv("SPECD_PLUGIN_DIR", (plugins + "/none").c_str(), 1);  // only the copy: no built-in ngram
  DaemonProcess d({"--plugin-dir", plugins});
  ::unsetenv("SPECD_PLUGIN_DIR");
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  GenParams p;
  p.max_tokens = 30;
  p.decoder = "ngram";
  REQUIRE(c.send(generate_frame(1, p)));
  CHECK(collect(c, 1).error_code == SPECD_E_UNKNOWN_DECODER);
  fs::copy_file(build_root() + "/plugins/ngram.so", plugins + "/ngram.so");
  d.signal(SIGHUP);
  GenOutcome o;
  for (int tries = 0; tries < 100; ++tries) {  // the rescan happens between engine steps
    REQUIRE(c.send(generate_frame(2 + static_cast<uint64_t>(tries), p)));
    o = collect(c, 2 + static_cast<uint64_t>(tries));
    if (o.finished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE_MESSAGE(o.finished, d.log());
  CHECK(o.ids == reference_ids("Once upon a time", 30));
}

TEST_CASE("serve: --plugin-dir adds to the built-in decoders; a name clash keeps the added one") {
  namespace fs = std::filesystem;
  const std::string plugins = temp_dir();
  fs::copy_file(build_root() + "/plugins/ngram.so", plugins + "/ngram.so");
  DaemonProcess d({"--plugin-dir", plugins});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  GenParams p;
  p.max_tokens = 8;  // "ar", the default decoder, comes from the built-in directory
  REQUIRE(c.send(generate_frame(1, p)));
  CHECK(collect(c, 1).finished);
  CHECK_MESSAGE(d.log().find("ngram 1.1.0 (" + plugins + "/ngram.so)") != std::string::npos, d.log());
  CHECK_MESSAGE(d.log().find("duplicate decoder name 'ngram' (already loaded from " + plugins + "/ngram.so)") !=
                    std::string::npos, d.log());
}

TEST_CASE("serve: max_connections and the [access] allow-lists refuse connections with an Error") {
  const auto status_ok = [](RawClient& c) {
    if (!c.hello() || !c.send(simple_frame(1, wire::Body::StatusRequest, [](fb::FlatBufferBuilder& b) { return wire::CreateStatusRequest(b); })))
      return false;
    const auto f = c.recv();
    return !f.empty() && env_of(f)->body_as_StatusReply() != nullptr;
  };
  {
    DaemonProcess d({"--max-connections", "2"});
    REQUIRE_MESSAGE(d.wait_ready(), d.log());
    // wait_ready's probe connection may still hold a slot for a while on a loaded machine: retry the
    // second client until the daemon has let the probe go.
    RawClient a(d.socket(), RawClient::kNoHello);
    CHECK(status_ok(a));
    std::unique_ptr<RawClient> b;
    for (int i = 0; i < 100 && !b; ++i) {
      b = std::make_unique<RawClient>(d.socket(), RawClient::kNoHello);
      if (!status_ok(*b)) {
        b.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    REQUIRE_MESSAGE(b != nullptr, d.log());
    RawClient c(d.socket(), RawClient::kNoHello);
    const auto f = c.recv();
    REQUIRE(!f.empty());
    REQUIRE(env_of(f)->body_as_Error() != nullptr);
    CHECK(env_of(f)->body_as_Error()->code() == SPECD_E_LIMIT);
    CHECK(c.closed_by_peer());
    a.close();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    RawClient again(d.socket(), RawClient::kNoHello);
    CHECK(status_ok(again));  // a slot freed up
  }
  const std::string dir = temp_dir();
  const auto with_access = [&](const std::string& access) {
    const std::string text = "[access]\n" + access + "\n";
    write_file(dir + "/specd.toml", std::vector<uint8_t>(text.begin(), text.end()));
    return std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", dir + "/specd.toml"});
  };
  const uint32_t uid = ::getuid();
  auto denied = with_access("allow_uids = [" + std::to_string(uid + 1) + "]\nallow_gids = [" + std::to_string(::getgid() + 1) + "]");
  REQUIRE_MESSAGE(denied->wait_ready(), denied->log());
  RawClient c(denied->socket(), RawClient::kNoHello);
  expect_refused(c, SPECD_E_ACCESS, "not allowed");
  denied.reset();
  auto by_uid = with_access("allow_uids = [" + std::to_string(uid) + "]");
  REQUIRE_MESSAGE(by_uid->wait_ready(), by_uid->log());
  RawClient u(by_uid->socket(), RawClient::kNoHello);
  CHECK(status_ok(u));
  by_uid.reset();
  auto by_gid = with_access("allow_gids = [" + std::to_string(::getgid()) + "]");
  REQUIRE_MESSAGE(by_gid->wait_ready(), by_gid->log());
  RawClient g(by_gid->socket(), RawClient::kNoHello);
  CHECK(status_ok(g));
}

namespace {

// Fork a child that takes uid/gid and the supplementary groups, connects and says Hello: 0 when
// welcomed, 1 when refused with SPECD_E_ACCESS, 2 when it cannot connect, 3 for anything else.
int hello_as(const std::string& sock, uint32_t uid, uint32_t gid, std::vector<gid_t> groups) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(4);
    const int fd = connect_to(sock);
    if (fd < 0) ::_exit(2);
    daemon::FrameReader reader(1u << 20);
    const auto hello = hello_frame();
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size())) ::_exit(3);
    std::vector<uint8_t> frame;
    for (;;) {
      auto r = reader.next(&frame);
      if (!r) ::_exit(3);
      if (r.value()) {
        const wire::Envelope* e = daemon::envelope_of(frame);
        if (e && e->body_type() == wire::Body::Welcome) ::_exit(0);
        if (e && e->body_as_Error() && e->body_as_Error()->code() == SPECD_E_ACCESS) ::_exit(1);
        ::_exit(3);
      }
      uint8_t buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) ::_exit(3);
      reader.feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("serve: allow_gids admits a client by a supplementary group (SO_PEERGROUPS)") {
  if (::getuid() != 0) {
    MESSAGE("skipped: needs root to take another uid and groups");
    return;
  }
  const std::string dir = temp_dir();
  const std::string text = "[access]\nallow_gids = [4242]\n";
  write_file(dir + "/specd.toml", std::vector<uint8_t>(text.begin(), text.end()));
  DaemonProcess d({"--config", dir + "/specd.toml", "--socket-mode", "0666"});
  REQUIRE(::chmod(d.dir().c_str(), 0711) == 0);  // the socket's directory, reachable by the test's uid
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  CHECK_MESSAGE(hello_as(d.socket(), 45000, 45000, {4242}) == 0, d.log());        // `usermod -aG`: a supplementary group
  CHECK_MESSAGE(hello_as(d.socket(), 45000, 4242, {}) == 0, d.log());             // the primary group
  CHECK_MESSAGE(hello_as(d.socket(), 45000, 45000, {4243, 45000}) == 1, d.log());  // neither
  CHECK(d.log().find("groups 45000,4243") != std::string::npos);
}

namespace {

// The first Error or Welcome frame about rid on fd within 20 s (with any: the first frame about rid),
// or nullptr. No doctest assertions: it runs in forked children.
const wire::Envelope* next_answer(int fd, daemon::FrameReader& reader, std::vector<uint8_t>& frame, uint64_t rid,
                                  bool any = false) {
  for (int waited = 0; waited < 20000;) {
    auto r = reader.next(&frame);
    if (!r) return nullptr;
    if (r.value()) {
      const wire::Envelope* e = daemon::envelope_of(frame);
      if (e && e->request_id() == rid && (any || e->body_as_Error() || e->body_as_Welcome())) return e;
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 0) {
      waited += 100;
      continue;
    }
    uint8_t buf[65536];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return nullptr;
    reader.feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  }
  return nullptr;
}

// As uid 45000: four connections (two over the share of 2 get LIMIT), then two long requests on each
// welcomed one (the fourth is over the share of 3). Exit 0 when both shares held exactly.
int one_user_over_its_shares(const std::string& sock) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(45000) != 0 || ::setuid(45000) != 0) return 4;
  std::vector<int> welcomed;
  int limited = 0;
  std::vector<uint8_t> frame;
  for (int i = 0; i < 4; ++i) {
    const int fd = connect_to(sock);
    if (fd < 0) return 2;
    const auto hello = hello_frame();
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size())) return 3;
    daemon::FrameReader reader(1u << 20);
    const wire::Envelope* e = next_answer(fd, reader, frame, 0);
    if (e && e->body_as_Welcome()) welcomed.push_back(fd);
    else if (e && e->body_as_Error() && e->body_as_Error()->code() == SPECD_E_LIMIT) ++limited;
  }
  if (welcomed.size() != 2 || limited != 2) return 10 + static_cast<int>(welcomed.size()) * 3 + limited;
  GenParams p;
  p.max_tokens = 2000;
  // A decoder that sleeps 80 ms in every step (tests/plugins/misbehave.c), so no admitted request can
  // reach EOS and free its share before the fourth is sent: with a fast model one could.
  p.decoder = "misbehave";
  p.options = R"({"mode": "slow"})";
  // One after another, each seen streaming (admitted) before the next goes out: the daemon reads
  // connections in no set order, so sending all four at once would not say which is the fourth.
  std::vector<daemon::FrameReader> readers(2, daemon::FrameReader(1u << 26));
  const std::pair<size_t, uint64_t> order[] = {{0, 1}, {1, 1}, {0, 2}, {1, 2}};
  const wire::Envelope* e = nullptr;
  for (const auto& [conn, rid] : order) {
    const auto g = generate_frame(rid, p);
    if (::send(welcomed[conn], g.data(), g.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(g.size())) return 3;
    e = next_answer(welcomed[conn], readers[conn], frame, rid, true);
    if (!e) return 19;
    if (rid == 1 || conn == 0) {
      if (!e->body_as_TokenEvent()) return 22;  // the first three are admitted
    }
  }
  if (!e || !e->body_as_Error() || e->body_as_Error()->code() != SPECD_E_LIMIT) return 20;
  const std::string msg = e->body_as_Error()->message() ? e->body_as_Error()->message()->str() : "";
  return msg.find("limits.max_requests_per_uid") != std::string::npos ? 0 : 21;
}

}  // namespace

TEST_CASE("serve: one user's share of connections and of requests in flight; others are unaffected") {
  if (::getuid() != 0) {
    MESSAGE("skipped: needs root to take another uid");
    return;
  }
  DaemonProcess d({"--max-connections-per-uid", "2", "--max-requests-per-uid", "3", "--socket-mode", "0666",
                   "--plugin-dir", build_root() + "/plugins", "--plugin-dir", build_root() + "/tests/plugins"});
  REQUIRE(::chmod(d.dir().c_str(), 0711) == 0);  // the socket's directory, reachable by the child's uid
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  // Root is not limited: it holds three connections throughout.
  RawClient a(d.socket()), b(d.socket()), c(d.socket());
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(one_user_over_its_shares(d.socket()));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "child status " << status << "; log:\n" << d.log());
  check_still_serving(d);
}

TEST_CASE("serve: a refused client that keeps sending still reads why it was refused") {
  const std::string dir = temp_dir();
  const std::string text = "[access]\nallow_uids = [" + std::to_string(::getuid() + 1) + "]\n";
  write_file(dir + "/specd.toml", std::vector<uint8_t>(text.begin(), text.end()));
  DaemonProcess d({"--config", dir + "/specd.toml"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  // The daemon has refused and shut down its side before the Hello arrives: the Hello is still
  // taken (no EPIPE), and the Error is there to read.
  {
    RawClient c(d.socket(), RawClient::kNoHello);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(c.send(hello_frame()));
    expect_refused(c, SPECD_E_ACCESS, "not allowed");
  }
  for (int i = 0; i < 30; ++i) {
    CAPTURE(i);
    RawClient c(d.socket(), RawClient::kNoHello);
    CHECK(c.send(hello_frame()));
    expect_refused(c, SPECD_E_ACCESS, "not allowed");
  }
  // specctl says why, every time.
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    std::string out;
    CHECK(run_command(build_root() + "/clients/specctl --socket '" + d.socket() + "' status 2>&1", &out) == 4);
    CHECK_MESSAGE(out.rfind("specctl: uid " + std::to_string(::getuid()) + " (groups", 0) == 0, out);
    CHECK_MESSAGE(out.find("is not allowed by the daemon's [access] lists") != std::string::npos, out);
  }
}

TEST_CASE("serve: a client over max_connections that keeps sending still reads the LIMIT Error") {
  DaemonProcess d({"--max-connections", "1"});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::unique_ptr<RawClient> holder;  // wait_ready's probe may hold the one slot for a moment
  for (int i = 0; i < 100 && !holder; ++i) {
    holder = std::make_unique<RawClient>(d.socket(), RawClient::kNoHello);
    if (!holder->hello()) {
      holder.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  REQUIRE_MESSAGE(holder != nullptr, d.log());
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    RawClient c(d.socket(), RawClient::kNoHello);
    CHECK(c.send(hello_frame()));
    expect_refused(c, SPECD_E_LIMIT, "max_connections");
  }
}
