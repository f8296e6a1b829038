// The soak (issue: reliability campaign): many concurrent clients against one daemon serving three
// models and every decoder, with greedy and sampled requests, cancels, clients that vanish
// mid-stream, slow readers, bad requests (unknown decoder, bad option, context overflow, over-long
// max_tokens) and malformed or oversize frames on connections of their own; and the same through the
// HTTP API (greedy completions streamed or whole, streams whose client vanishes, bad bodies). Pass means:
//   - the daemon stays up and exits 0 on SIGTERM;
//   - every request ends with exactly one Finished or Error (no frame about it afterwards);
//   - every greedy request's tokens (HTTP: text) equal the same request run in-process, alone;
//   - the run log has exactly one row per request, none left running;
//   - the daemon's RSS at the end is within kRssMarginMiB of its RSS after a warm-up.
// Size: SPECD_SOAK_CLIENTS (default 16) × SPECD_SOAK_REQUESTS (default 12), bounded by
// SPECD_SOAK_SECONDS (default 300: no new request starts after it). bench/soak.sh runs 64 × 100
// under ASan+UBSan and prints the figures this test prints as its MESSAGE.
#include "tests/daemon_harness.h"
#include "tests/http_client.h"
#include "tests/runtime_fixture.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

using namespace specd;
using namespace specd::test;

namespace {

constexpr int64_t kRssMarginMiB = 64;

int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

int64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// One kind of greedy request the clients draw from: a model, a decoder with options, a prompt.
struct Shape {
  std::string model, decoder, options, prompt;
  int32_t max_tokens = 0;
};

// The models and decoders under soak; a trained model that is missing drops its shapes (said).
struct Served {
  int http_port = free_port();
  std::vector<std::string> daemon_args;
  std::vector<Shape> shapes;
  std::map<std::string, std::string> paths;  // model name -> file
};

Served served() {
  Served s;
  s.paths["stories"] = model_path("stories260K.gguf");
  if (auto p = trained_model("stories260K-tidar.gguf"); !p.empty()) s.paths["tidar"] = p;
  if (auto p = trained_model("stories260K-d2f.gguf"); !p.empty()) s.paths["d2f"] = p;
  for (const auto& [name, path] : s.paths)
    if (name != "stories") s.daemon_args.insert(s.daemon_args.end(), {"--model", name + "=" + path});
  s.daemon_args.insert(s.daemon_args.end(), {"--http", "127.0.0.1:" + std::to_string(s.http_port)});
  const bool drafter = !trained_model("stories260K-redrafter.gguf").empty();
  std::vector<std::tuple<std::string, std::string, std::string>> decoders = {
      {"stories", "ar", "{}"}, {"stories", "ngram", R"({"k":"4"})"}};
  if (drafter) decoders.push_back({"stories", "redrafter", R"({"W": 4, "L": 4})"});
  if (s.paths.count("tidar")) decoders.push_back({"tidar", "tidar", "{}"}), decoders.push_back({"tidar", "ar", "{}"});
  if (s.paths.count("d2f")) decoders.push_back({"d2f", "lopa", R"({"k": 2})"});
  std::string missing;
  if (!drafter) missing += " (no trained drafter: redrafter left out)";
  if (!s.paths.count("tidar")) missing += " (no TiDAR model: tidar left out)";
  if (!s.paths.count("d2f")) missing += " (no D2F model: lopa left out)";
  MESSAGE("soak decoders: " << decoders.size() << missing);
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily wanted to", "One day, a big"};
  for (const auto& [model, decoder, options] : decoders)
    for (const auto& prompt : prompts)
      for (int32_t n : {24, 64}) s.shapes.push_back({model, decoder, options, prompt, n});
  return s;
}

// What one shape gives run alone: its tokens and their text as the runtime detokenizes it.
struct Solo {
  std::vector<int32_t> ids;
  std::string text;
};

// The oracle: each shape run in-process, alone, on a runtime of its own model.
std::vector<Solo> solo_outputs(const Served& s) {
  daemon::PluginRegistry plugins;
  for (const char* d : {"ar", "ngram", "redrafter", "tidar", "lopa"}) REQUIRE(plugins.load_file(plugin_path(d)).has_value());
  kernels::ThreadPool pool(1);
  std::map<std::string, std::unique_ptr<engine::Model>> models;
  std::map<std::string, std::unique_ptr<daemon::DecodeRuntime>> rts;
  for (const auto& [name, path] : s.paths) {
    auto m = engine::Model::load(path);
    REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
    models[name] = std::move(m.value());
    rts[name] = std::make_unique<daemon::DecodeRuntime>(*models[name], plugins, pool);
  }
  std::vector<Solo> out;
  for (const Shape& sh : s.shapes) {
    const engine::Model& m = *models[sh.model];
    daemon::DecodeRequest r;
    r.prompt = m.tokenizer().encode(sh.prompt, true);
    r.max_tokens = sh.max_tokens;
    r.stop_tokens = {m.config().eos, m.config().bos};
    r.decoder = sh.decoder;
    r.options_json = sh.options;
    auto res = rts[sh.model]->run(r);
    REQUIRE_MESSAGE(res.has_value(), sh.decoder << ": " << (res ? "" : res.error().message));
    Solo solo{res->tokens, ""};
    int32_t prev = r.prompt.back();
    for (int32_t t : res->tokens) solo.text += m.tokenizer().piece(prev, t), prev = t;
    out.push_back(std::move(solo));
  }
  return out;
}

GenParams params_of(const Shape& sh) {
  GenParams p;
  p.model = sh.model;
  p.decoder = sh.decoder;
  p.options = sh.options;
  p.prompt_text = sh.prompt;
  p.max_tokens = sh.max_tokens;
  return p;
}

std::vector<uint8_t> cancel_request(uint64_t rid) {
  return simple_frame(rid, wire::Body::Cancel, [](fb::FlatBufferBuilder& b) { return wire::CreateCancel(b); });
}

struct Tally {
  std::mutex mu;
  int requests = 0, greedy = 0, sampled = 0, cancels = 0, vanished = 0, slow = 0, malformed = 0;
  int http = 0, http_vanished = 0, http_bad = 0;
  std::map<std::string, int> errors;  // by name
  std::vector<std::string> failures;
  std::set<int64_t> run_ids;
  void fail(const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    if (failures.size() < 20) failures.push_back(what);
  }
};

enum class Kind { Greedy, Sampled, Cancel, Vanish, Slow, Bad, Malformed, Http, HttpVanish, HttpBad };

Kind draw(std::mt19937& rng) {
  const int x = static_cast<int>(rng() % 100);
  if (x < 36) return Kind::Greedy;
  if (x < 48) return Kind::Sampled;
  if (x < 56) return Kind::Cancel;
  if (x < 62) return Kind::Vanish;
  if (x < 69) return Kind::Slow;
  if (x < 77) return Kind::Bad;
  if (x < 83) return Kind::Malformed;
  if (x < 93) return Kind::Http;
  if (x < 97) return Kind::HttpVanish;
  return Kind::HttpBad;
}

// An HTTP completion body for shape p (greedy unless told), with the decoder in the specd extension.
std::string http_body(const GenParams& p, bool stream) {
  nlohmann::json j{{"model", p.model}, {"prompt", p.prompt_text}, {"max_tokens", p.max_tokens}, {"temperature", p.temperature},
                   {"seed", p.seed}, {"stream", stream}, {"stream_options", {{"include_usage", true}}},
                   {"specd", {{"decoder", p.decoder}, {"options", nlohmann::json::parse(p.options.empty() ? "{}" : p.options)}}}};
  if (!stream) j.erase("stream_options");
  return j.dump();
}

// The generated text and run id of a 200 completion response, streamed (SSE) or whole; false if malformed.
bool http_text(const std::string& body, bool stream, std::string* text, int64_t* run_id) {
  try {
    if (!stream) {
      const auto j = nlohmann::json::parse(body);
      *text = j["choices"][0]["text"].get<std::string>();
      *run_id = j["usage"]["specd"]["run_id"].get<int64_t>();
      return true;
    }
    bool done = false;
    for (size_t pos = 0; (pos = body.find("data: ", pos)) != std::string::npos;) {
      const size_t end = body.find("\n\n", pos);
      if (end == std::string::npos) return false;
      const std::string data = body.substr(pos + 6, end - pos - 6);
      pos = end + 2;
      if (data == "[DONE]") {
        done = true;
        continue;
      }
      const auto j = nlohmann::json::parse(data);
      for (const auto& c : j["choices"]) *text += c["text"].get<std::string>();
      if (j.contains("usage")) *run_id = j["usage"]["specd"]["run_id"].get<int64_t>();
    }
    return done;
  } catch (const std::exception&) {
    return false;
  }
}

// One client's life: a connection, requests one after another, a new connection after vanishing.
void client(const DaemonProcess& d, const Served& s, const std::vector<Solo>& solo, int index,
            int requests, std::chrono::steady_clock::time_point deadline, Tally& t) {
  std::mt19937 rng(static_cast<uint32_t>(1000 + index));
  auto conn = std::make_unique<RawClient>(d.socket());  // says Hello
  uint64_t rid = 1;
  auto finish = [&](const GenOutcome& o, const std::string& what) {
    std::lock_guard<std::mutex> l(t.mu);
    ++t.requests;
    if (!o.finished) {
      ++t.errors[o.error_name];
      if (o.error_name.empty()) t.failures.push_back(what + ": Error without a name");
      return;
    }
    if (!t.run_ids.insert(o.run_id).second) t.failures.push_back(what + ": run id " + std::to_string(o.run_id) + " twice");
    if (o.streamed_ids != o.ids && o.token_events > 0) t.failures.push_back(what + ": streamed ids differ from Finished");
  };
  for (int r = 0; r < requests && std::chrono::steady_clock::now() < deadline; ++r, ++rid) {
    const Kind k = draw(rng);
    const size_t si = rng() % s.shapes.size();
    GenParams p = params_of(s.shapes[si]);
    const std::string what = "client " + std::to_string(index) + " request " + std::to_string(rid);
    switch (k) {
      case Kind::Greedy:
      case Kind::Slow: {
        conn->send(generate_frame(rid, p));
        if (k == Kind::Slow) std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 300));
        const GenOutcome o = collect(*conn, rid, 120000);
        finish(o, what);
        std::lock_guard<std::mutex> l(t.mu);
        ++(k == Kind::Slow ? t.slow : t.greedy);
        if (o.finished && o.ids != solo[si].ids)
          t.failures.push_back(what + ": " + p.decoder + " on " + p.model + " differs from its solo in-process run");
        break;
      }
      case Kind::Sampled: {
        p.temperature = 0.8f;
        p.top_k = 40;
        p.seed = rng();
        conn->send(generate_frame(rid, p));
        finish(collect(*conn, rid, 120000), what);
        std::lock_guard<std::mutex> l(t.mu);
        ++t.sampled;
        break;
      }
      case Kind::Cancel:
      case Kind::Vanish: {
        p.max_tokens = 300;
        p.temperature = 1.0f;
        p.seed = rng();
        conn->send(generate_frame(rid, p));
        auto first = conn->recv_for(rid, 120000);
        if (first.empty()) return t.fail(what + ": nothing before cancel");
        const bool streaming = env_of(first)->body_type() == wire::Body::TokenEvent;
        conn->unread(rid, std::move(first));
        if (k == Kind::Vanish && streaming) {
          conn = std::make_unique<RawClient>(d.socket());  // the old one closes mid-stream
          std::lock_guard<std::mutex> l(t.mu);
          ++t.requests;
          ++t.vanished;
          break;
        }
        if (streaming) conn->send(cancel_request(rid));
        const GenOutcome o = collect(*conn, rid, 120000);
        finish(o, what);
        std::lock_guard<std::mutex> l(t.mu);
        ++t.cancels;
        if (o.finished && streaming && o.reason != "cancel" && o.ids.size() >= 300) t.failures.push_back(what + ": cancel ignored");
        break;
      }
      case Kind::Bad: {
        switch (rng() % 4) {
          case 0: p.decoder = "no-such-decoder"; break;
          case 1: p.options = R"({"no_such_option": 1})"; break;
          case 2: p.prompt_ids.assign(4000, 300); p.prompt_ids[0] = 1; break;  // beyond every context
          default: p.max_tokens = 1 << 30; break;
        }
        conn->send(generate_frame(rid, p));
        const GenOutcome o = collect(*conn, rid, 120000);
        finish(o, what);
        if (o.finished && p.max_tokens != 1 << 30) t.fail(what + ": a bad request finished");
        break;
      }
      case Kind::Http: {
        const bool stream = rng() % 2;
        const HttpResult hr = http_request(s.http_port, "/v1/completions", http_body(p, stream), 120000);
        std::string text;
        int64_t run_id = 0;
        std::lock_guard<std::mutex> l(t.mu);
        ++t.requests;
        ++t.http;
        if (!hr.complete || hr.status != 200 || !http_text(hr.body, stream, &text, &run_id)) {
          t.failures.push_back(what + ": HTTP " + std::to_string(hr.status) + " " + hr.body.substr(0, 200));
          break;
        }
        if (!t.run_ids.insert(run_id).second) t.failures.push_back(what + ": run id " + std::to_string(run_id) + " twice");
        if (text != solo[si].text) t.failures.push_back(what + ": HTTP " + p.decoder + " on " + p.model + " differs from its solo run");
        break;
      }
      case Kind::HttpVanish: {
        p.max_tokens = 300;
        p.temperature = 1.0f;
        p.seed = rng();
        (void)http_request(s.http_port, "/v1/completions", http_body(p, true), 120000, 400);  // headers and a chunk or two
        std::lock_guard<std::mutex> l(t.mu);
        ++t.requests;
        ++t.http_vanished;
        break;
      }
      case Kind::HttpBad: {
        const char* bodies[] = {"{", R"({"prompt":"x","temperature":9})", R"({"prompt":"x","specd":{"decoder":"no-such"}})",
                                R"({"prompt":"x","model":"no-such"})"};
        const int which = static_cast<int>(rng() % 4);
        const HttpResult hr = http_request(s.http_port, "/v1/completions", bodies[which], 120000);
        std::lock_guard<std::mutex> l(t.mu);
        ++t.requests;
        ++t.http_bad;
        ++t.errors["HTTP_" + std::to_string(hr.status)];
        if (!hr.complete || hr.status != (which == 3 ? 404 : 400))
          t.failures.push_back(what + ": bad HTTP body " + std::to_string(which) + " got " + std::to_string(hr.status));
        break;
      }
      case Kind::Malformed: {
        RawClient bad(d.socket());
        std::vector<uint8_t> junk(8 + rng() % 64);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        if (rng() % 2) junk = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3};  // a length prefix over max_frame_bytes
        bad.send(junk);
        if (!bad.closed_by_peer(20000)) t.fail(what + ": a malformed frame did not close its connection");
        std::lock_guard<std::mutex> l(t.mu);
        ++t.malformed;
        break;
      }
    }
  }
  // Nothing about a finished request may follow its Finished or Error.
  if (!conn->recv(300).empty()) t.fail("client " + std::to_string(index) + ": a frame after every request ended");
}

}  // namespace

TEST_CASE("soak: concurrent clients, every decoder, cancels, vanishing and slow clients, bad and malformed input") {
  const int clients = env_int("SPECD_SOAK_CLIENTS", 16), requests = env_int("SPECD_SOAK_REQUESTS", 12);
  const int seconds = env_int("SPECD_SOAK_SECONDS", 300);
  const Served s = served();
  const auto solo = solo_outputs(s);
  // Under ASan freed memory sits in a quarantine (256 MiB by default) that RSS would count as growth.
  std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
  setenv("ASAN_OPTIONS", (asan + (asan.empty() ? "" : ":") + "quarantine_size_mb=16").c_str(), 1);
  std::vector<std::string> args = s.daemon_args;
  args.insert(args.end(), {"--max-concurrent", "32", "--max-queued", "256"});
  DaemonProcess d(args);
  if (asan.empty()) unsetenv("ASAN_OPTIONS"); else setenv("ASAN_OPTIONS", asan.c_str(), 1);
  REQUIRE_MESSAGE(d.wait_ready(), d.log());

  Tally warm;  // one client's worth of everything first, so caches, pools and the run log reach working size
  client(d, s, solo, -1, static_cast<int>(s.shapes.size()), std::chrono::steady_clock::now() + std::chrono::minutes(5), warm);
  const int64_t rss_warm = rss_kib(d.pid());

  Tally t;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      try {
        client(d, s, solo, i, requests, deadline, t);
      } catch (const std::exception& e) {
        t.fail("client " + std::to_string(i) + ": " + e.what());
      } catch (...) {
        t.fail("client " + std::to_string(i) + ": a check failed inside the client");
      }
    });
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t rss_end = rss_kib(d.pid());

  d.signal(SIGTERM);
  REQUIRE_MESSAGE(d.wait_exit(60000) == 0, d.log());
  const auto rows = read_runs(d.db());
  int running = 0;
  std::set<int64_t> ids;
  for (const auto& [id, r] : rows) {
    running += r.finish_reason == "running" || r.finish_reason == "interrupted";
    ids.insert(id);
  }
  std::string errors;
  for (const auto& [name, n] : t.errors) errors += " " + name + "=" + std::to_string(n);
  MESSAGE("soak: " << clients << " clients, " << t.requests << " requests in " << elapsed << " s: " << t.greedy
                   << " greedy, " << t.slow << " slow readers, " << t.sampled << " sampled, " << t.cancels << " cancels, "
                   << t.vanished << " vanished mid-stream, " << t.malformed << " malformed connections; HTTP: " << t.http
                   << " greedy, " << t.http_vanished << " vanished, " << t.http_bad << " bad; errors:" << errors
                   << "; run rows " << rows.size() << " (+" << warm.requests << " warm-up); RSS after warm-up "
                   << rss_warm / 1024 << " MiB, at the end " << rss_end / 1024 << " MiB");
  for (const auto& f : warm.failures) FAIL_CHECK("warm-up: " << f);
  for (const auto& f : t.failures) FAIL_CHECK(f);
  CHECK(static_cast<int>(rows.size()) == t.requests + warm.requests);
  CHECK(running == 0);
  for (int64_t id : t.run_ids) CHECK_MESSAGE(ids.count(id) == 1, "run " << id << " has no row");
  CHECK(t.requests > 0);
  CHECK(rss_warm > 0);
  CHECK(rss_end <= rss_warm + kRssMarginMiB * 1024);
}
