// The OpenAI-compatible HTTP API: request parsing and response shapes in-process, then a real
// daemon driven by real clients — curl, raw sockets for malformed and slow clients, Prometheus's
// promtool for /metrics and the official `openai` npm package.
#include "daemon/http_address.h"
#include "daemon/metrics.h"
#include "daemon/openai_request.h"
#include "daemon/openai_response.h"
#include "engine/gguf_reader.h"
#include "engine/tokenizer.h"
#include "tests/chat_oracle.h"
#include "tests/daemon_harness.h"
#include "tests/http_client.h"

#include <nlohmann/json.hpp>
#include <specd/decoder.h>
#include <sqlite3.h>

#include <filesystem>

#include <arpa/inet.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>

namespace specd::test {
namespace {

using json = nlohmann::json;
using daemon::OpenAiEndpoint;
using daemon::OpenAiError;
using daemon::OpenAiRequest;

constexpr const char* kOpenAiVersion = "6.10.0";  // pinned: the newest line that supports Node.js 20

bool parse(OpenAiEndpoint ep, const std::string& body, OpenAiRequest* out, OpenAiError* err, int32_t limit = 4096) {
  return daemon::parse_openai_request(ep, body, limit, out, err);
}

struct HttpReply {
  int status = 0;
  std::string body;
};

// curl, the reference command-line client: args are curl's options and URL.
HttpReply curl(const std::string& args) {
  std::string out;
  run_command("curl -s -N --max-time 60 -w '\\n%{http_code}' " + args + " 2>&1", &out);
  HttpReply r;
  const size_t nl = out.rfind('\n');
  if (nl == std::string::npos) return r;
  r.status = std::atoi(out.c_str() + nl + 1);
  r.body = out.substr(0, nl);
  return r;
}

// DIR/specd.toml holding toml; returns its path.
std::string config_file(const std::string& dir, const std::string& toml) {
  const std::string path = dir + "/specd.toml";
  write_file(path, std::vector<uint8_t>(toml.begin(), toml.end()));
  return path;
}

// A daemon with the HTTP API on a loopback port.
struct HttpDaemon {
  int port = free_port();
  DaemonProcess d;
  std::string base, unix_path;
  explicit HttpDaemon(std::vector<std::string> extra = {})
      : d([&] {
          extra.insert(extra.end(), {"--http", "127.0.0.1:" + std::to_string(port), "--plugin-dir", build_root() + "/plugins",
                                     "--plugin-dir", build_root() + "/tests/plugins"});
          return extra;
        }()) {
    base = "http://127.0.0.1:" + std::to_string(port);
    REQUIRE_MESSAGE(d.wait_ready(), d.log());
    // The HTTP listeners open after the protocol socket: wait for them too.
    bool up = false;
    for (int i = 0; i < 500 && !up; ++i) {
      up = curl("--max-time 1 " + base + "/health").status != 0;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE_MESSAGE(up, d.log());
  }
  HttpReply post(const std::string& path, const std::string& body, const std::string& more = "") {
    return curl(more + " -H 'Content-Type: application/json' --data-binary " + shell_quote(body) + " " + base + path);
  }
  HttpReply get(const std::string& path, const std::string& more = "") { return curl(more + " " + base + path); }
};

// `specd generate` in-process on the same model and decoder: what greedy HTTP output must equal.
std::string generate_text(const std::string& prompt, int max_tokens, const std::string& decoder) {
  std::string out;
  const int rc = run_command(build_root() + "/daemon/specd generate --model " + model_path("stories260K.gguf") + " --prompt " +
                                 shell_quote(prompt) + " --max-tokens " + std::to_string(max_tokens) + " --decoder " + decoder +
                                 " --plugin-dir " + build_root() + "/plugins --json 2>/dev/null",
                             &out);
  REQUIRE(rc == 0);
  return json::parse(out)["text"].get<std::string>();
}

// (via, finish_reason, error) of every run-log row, oldest first.
std::vector<std::array<std::string, 3>> run_rows(const std::string& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT via, finish_reason, error FROM runs ORDER BY id", -1, &st, nullptr) == SQLITE_OK);
  std::vector<std::array<std::string, 3>> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::array<std::string, 3> r;
    for (int i = 0; i < 3; ++i) r[static_cast<size_t>(i)] = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
    rows.push_back(r);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return rows;
}

// The text of an SSE stream's chunks, and whether it ended with [DONE].
std::string sse_text(const std::string& body, bool chat, bool* done) {
  std::string text;
  *done = false;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    const std::string data = body.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (data == "[DONE]") {
      *done = true;
      continue;
    }
    const json j = json::parse(data);
    for (const json& c : j["choices"]) {
      if (chat && c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
      if (!chat) text += c["text"].get<std::string>();
    }
  }
  return text;
}

// Sends raw bytes on a connected socket fd (closed here) and returns what came back before the peer
// closed (or timeout_ms passed); "connect failed" for fd < 0. No doctest assertions: threads and
// forked children call it.
std::string raw_exchange_on(int fd, const std::string& bytes, int timeout_ms) {
  if (fd < 0) return "connect failed";
  if (!bytes.empty()) (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return got;
}

// The same over TCP to the loopback port.
std::string raw_exchange(int port, const std::string& bytes, int timeout_ms) { return raw_exchange_on(connect_loopback(port), bytes, timeout_ms); }

// As uid 45000 on the HTTP Unix socket, with a share of 2: two idle connections are kept open and
// the third is answered 429 naming the setting, then closed. Exit 0 when exactly so.
int one_user_over_its_http_share(const std::string& sock) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(45000) != 0 || ::setuid(45000) != 0) return 4;
  const int a = connect_to(sock), b = connect_to(sock);
  if (a < 0 || b < 0) return 5;
  // The daemon accepts in arrival order: a and b are in before the third is looked at.
  const std::string got = raw_exchange_on(connect_to(sock), "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
  ::close(a);
  ::close(b);
  if (got.rfind("HTTP/1.1 429 ", 0) != 0) return 6;
  return got.find("limits.max_connections_per_uid") != std::string::npos ? 0 : 7;
}

}  // namespace

TEST_CASE("openai request: completions fields and their defaults") {
  OpenAiRequest q;
  OpenAiError e;
  REQUIRE(parse(OpenAiEndpoint::Completions,
                R"({"model":"m","prompt":"hi","max_tokens":7,"temperature":0,"top_p":0.5,"seed":9,"stop":["a","b"],"stream":true,
                    "stream_options":{"include_usage":true},"specd":{"decoder":"ngram","options":{"n":3}},"user":"x","n":1})",
                &q, &e));
  CHECK(q.model == "m");
  CHECK(q.prompt == "hi");
  CHECK(q.max_tokens == 7);
  CHECK(q.temperature == 0.0f);
  CHECK(q.top_p == 0.5f);
  CHECK(q.seed == 9);
  CHECK(q.has_seed);
  CHECK(q.stop == std::vector<std::string>{"a", "b"});
  CHECK(q.stream);
  CHECK(q.include_usage);
  CHECK(q.decoder == "ngram");
  CHECK(json::parse(q.options_json) == json{{"n", 3}});
  REQUIRE(parse(OpenAiEndpoint::Completions, R"({"prompt":[1,2,3],"max_completion_tokens":3,"max_tokens":9})", &q, &e));
  CHECK(q.prompt_ids == std::vector<int32_t>{1, 2, 3});
  CHECK(q.max_tokens == 3);  // max_completion_tokens wins
  CHECK(q.temperature == 1.0f);  // OpenAI's default
  CHECK(q.decoder == "ar");
  REQUIRE(parse(OpenAiEndpoint::Completions, R"({"prompt":["one"],"stop":"x"})", &q, &e));
  CHECK(q.prompt == "one");
  CHECK(q.stop == std::vector<std::string>{"x"});
}

TEST_CASE("openai request: chat messages") {
  OpenAiRequest q;
  OpenAiError e;
  REQUIRE(parse(OpenAiEndpoint::ChatCompletions,
                R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":null,
                    "tool_calls":[]}],"tools":[{"type":"function"}]})",
                &q, &e));
  CHECK(q.messages.size() == 2);
  CHECK(q.tools.size() == 1);
  CHECK_FALSE(parse(OpenAiEndpoint::ChatCompletions, R"({"messages":[]})", &q, &e));
  CHECK(e.param == "messages");
  CHECK_FALSE(parse(OpenAiEndpoint::ChatCompletions, R"({"messages":[{"content":"x"}]})", &q, &e));
  CHECK(e.param == "messages[0].role");
  CHECK_FALSE(parse(OpenAiEndpoint::ChatCompletions, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", &q, &e));
  CHECK(e.param == "messages[0].content");
  CHECK_FALSE(parse(OpenAiEndpoint::ChatCompletions, R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", &q, &e));
  CHECK(e.param == "tools");
}

TEST_CASE("openai request: every refusal is a 400 naming its parameter") {
  const std::pair<const char*, const char*> cases[] = {
      {"{", ""},
      {"[1]", ""},
      {R"({"prompt":"a","prompt":"b"})", "prompt"},
      {R"({})", "prompt"},
      {R"({"prompt":""})", "prompt"},
      {R"({"prompt":["a","b"]})", "prompt"},
      {R"({"prompt":[1,-2]})", "prompt"},
      {R"({"prompt":7})", "prompt"},
      {R"({"prompt":"a","model":3})", "model"},
      {R"({"prompt":"a","max_tokens":0})", "max_tokens"},
      {R"({"prompt":"a","max_tokens":"3"})", "max_tokens"},
      {R"({"prompt":"a","max_tokens":5000})", "max_tokens"},
      {R"({"prompt":"a","temperature":2.5})", "temperature"},
      {R"({"prompt":"a","temperature":"hot"})", "temperature"},
      {R"({"prompt":"a","top_p":0})", "top_p"},
      {R"({"prompt":"a","seed":1.5})", "seed"},
      {R"({"prompt":"a","stop":[1]})", "stop"},
      {R"({"prompt":"a","stop":["1","2","3","4","5"]})", "stop"},
      {R"({"prompt":"a","stream":"yes"})", "stream"},
      {R"({"prompt":"a","stream_options":{"include_usage":1}})", "include_usage"},
      {R"({"prompt":"a","stream_options":3})", "stream_options"},
      {R"({"prompt":"a","n":2})", "n"},
      {R"({"prompt":"a","presence_penalty":0.5})", "presence_penalty"},
      {R"({"prompt":"a","frequency_penalty":1})", "frequency_penalty"},
      {R"({"prompt":"a","logprobs":3})", "logprobs"},
      {R"({"prompt":"a","logit_bias":{"1":2}})", "logit_bias"},
      {R"({"prompt":"a","echo":true})", "echo"},
      {R"({"prompt":"a","best_of":2})", "best_of"},
      {R"({"prompt":"a","response_format":{"type":"json_object"}})", "response_format"},
      {R"({"prompt":"a","specd":[]})", "specd"},
      {R"({"prompt":"a","specd":{"decoder":""}})", "specd.decoder"},
      {R"({"prompt":"a","specd":{"options":[]}})", "specd.options"},
      {R"({"prompt":"a","specd":{"W":4}})", "specd.W"},
  };
  for (const auto& [body, param] : cases) {
    CAPTURE(body);
    OpenAiRequest q;
    OpenAiError e;
    REQUIRE_FALSE(parse(OpenAiEndpoint::Completions, body, &q, &e));
    CHECK(e.http_status == 400);
    CHECK(e.type == "invalid_request_error");
    CHECK(e.param == param);
    CHECK_FALSE(e.message.empty());
  }
}

TEST_CASE("openai response: bodies, chunks, errors and finish reasons") {
  daemon::OpenAiReply r{OpenAiEndpoint::ChatCompletions, "chatcmpl-7", 1700000000, "stories"};
  const daemon::OpenAiUsage u{5, 3, 7, "ngram", 2, 1.5};
  const json body = json::parse(daemon::completion_body(r, "hé", "stop", u));
  CHECK(body["object"] == "chat.completion");
  CHECK(body["choices"][0]["message"] == json{{"role", "assistant"}, {"content", "hé"}});
  CHECK(body["usage"]["total_tokens"] == 8);
  CHECK(body["usage"]["specd"]["run_id"] == 7);
  CHECK(body["usage"]["specd"]["tokens_per_forward"] == 1.5);
  const std::string chunk = daemon::stream_chunk(r, "x", nullptr, true);
  REQUIRE(chunk.rfind("data: ", 0) == 0);
  REQUIRE(chunk.size() > 8);
  CHECK(chunk.substr(chunk.size() - 2) == "\n\n");
  const json c = json::parse(chunk.substr(6));
  CHECK(c["choices"][0]["delta"] == json{{"role", "assistant"}, {"content", "x"}});
  CHECK(c["choices"][0]["finish_reason"].is_null());
  CHECK(daemon::stream_done() == "data: [DONE]\n\n");
  r.endpoint = OpenAiEndpoint::Completions;
  CHECK(json::parse(daemon::stream_usage_chunk(r, u).substr(6))["choices"].empty());
  CHECK(std::string(daemon::openai_finish_reason(SPECD_FINISH_CONTEXT)) == "length");
  CHECK(std::string(daemon::openai_finish_reason(SPECD_FINISH_STOP)) == "stop");
  const std::pair<int, int> statuses[] = {{SPECD_E_UNKNOWN_MODEL, 404}, {SPECD_E_LIMIT, 429}, {SPECD_E_CANCELED, 503},
                                          {SPECD_E_BAD_OPTION, 400}, {SPECD_E_CONTEXT, 400}, {SPECD_E_DEVICE, 500}};
  for (const auto& [code, status] : statuses) {
    const OpenAiError e = daemon::openai_error_of(Error{code, "why"});
    CHECK(e.http_status == status);
    const json j = json::parse(daemon::error_body(e));
    CHECK(j["error"]["message"] == "why");
  }
  // Invalid UTF-8 (a stream never cuts a character, but a model can emit bad bytes) still makes JSON.
  CHECK(json::accept(daemon::completion_body(r, std::string("a\xff"), "stop", u)));
}

TEST_CASE("http addresses") {
  auto a = daemon::parse_http_address("127.0.0.1:8080");
  REQUIRE(a);
  CHECK(a->loopback);
  CHECK(a->port == 8080);
  a = daemon::parse_http_address("[::1]:9");
  REQUIRE(a);
  CHECK(a->loopback);
  CHECK(a->host == "::1");
  a = daemon::parse_http_address("0.0.0.0:80");
  REQUIRE(a);
  CHECK_FALSE(a->loopback);
  a = daemon::parse_http_address("localhost:1");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  a = daemon::parse_http_address("unix:/run/x.sock");
  REQUIRE(a);
  CHECK(a->unix_socket);
  for (const char* bad : {"8080", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", "example.com:80", "unix:rel.sock", "1.2.3.4: 80"}) {
    CAPTURE(bad);
    auto r = daemon::parse_http_address(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == SPECD_E_INVALID_ARG);
  }
}

TEST_CASE("metrics: histograms are cumulative and labels escaped") {
  daemon::Metrics m;
  daemon::DecodeResult r;
  r.tokens = {1, 2, 3};
  r.steps = 2;
  r.emitted_hist = {0, 1, 1};
  r.prefill_seconds = 0.02;
  r.decode_seconds = 0.01;
  m.request_finished("http", "dec\"o", "stop", &r, 4);
  m.request_finished("socket", "ar", "error", nullptr, 0);
  const std::string text = m.render(daemon::EngineSnapshot{}, 2, 3);
  CHECK(text.find("specd_requests_total{via=\"http\",outcome=\"stop\"} 1\n") != std::string::npos);
  CHECK(text.find("specd_decoder_accepted_length_bucket{decoder=\"dec\\\"o\",le=\"1\"} 1\n") != std::string::npos);
  CHECK(text.find("specd_decoder_accepted_length_bucket{decoder=\"dec\\\"o\",le=\"2\"} 2\n") != std::string::npos);
  CHECK(text.find("specd_time_to_first_token_seconds_count 1\n") != std::string::npos);
  CHECK(text.find("specd_prompt_tokens_total 4\n") != std::string::npos);
  CHECK(text.find("specd_http_connections 2\n") != std::string::npos);
  CHECK(text.find("specd_http_connections_refused_total 3\n") != std::string::npos);
}

TEST_CASE("http: greedy completions through curl equal specd generate, streamed or not, and log their runs") {
  HttpDaemon h;
  const std::string prompt = "Once upon a time";
  for (const std::string decoder : {"ar", "ngram", "redrafter"}) {
    CAPTURE(decoder);
    const std::string want = generate_text(prompt, 32, decoder);
    const json req{{"model", "stories"}, {"prompt", prompt}, {"max_tokens", 32}, {"temperature", 0}, {"specd", {{"decoder", decoder}}}};
    HttpReply r = h.post("/v1/completions", req.dump());
    REQUIRE_MESSAGE(r.status == 200, r.body);
    const json body = json::parse(r.body);
    CHECK(body["choices"][0]["text"] == want);
    CHECK(body["choices"][0]["finish_reason"] == "length");
    CHECK(body["usage"]["completion_tokens"] == 32);
    CHECK(body["usage"]["specd"]["decoder"] == decoder);
    CHECK(body["id"] == "cmpl-" + std::to_string(body["usage"]["specd"]["run_id"].get<int64_t>()));
    json sreq = req;
    sreq["stream"] = true;
    sreq["stream_options"] = {{"include_usage", true}};
    r = h.post("/v1/completions", sreq.dump());
    REQUIRE(r.status == 200);
    bool done = false;
    CHECK(sse_text(r.body, false, &done) == want);
    CHECK(done);
    CHECK(r.body.find("\"usage\"") != std::string::npos);
  }
  // A stop string ends the text with finish_reason "stop".
  HttpReply r = h.post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":64,"temperature":0,"stop":"Lily"})");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["choices"][0]["finish_reason"] == "stop");
  r = h.get("/v1/models");
  REQUIRE(r.status == 200);
  const json list = json::parse(r.body);
  CHECK(list["object"] == "list");
  REQUIRE(list["data"].size() == 1);
  r = h.get("/v1/models/stories");
  REQUIRE(r.status == 200);
  const json model = json::parse(r.body);
  CHECK(model == list["data"][0]);
  // OpenAI's fields exactly, and what specctl models shows under "specd", by specctl models --json's names.
  CHECK(model["id"] == "stories");
  CHECK(model["object"] == "model");
  CHECK(model["created"] == 0);
  CHECK(model["owned_by"] == "specd");
  CHECK(model.size() == 5);
  std::string shown;
  REQUIRE(run_command(build_root() + "/clients/specctl --socket " + h.d.socket() + " --json models", &shown) == 0);
  json want = json::parse(shown)[0];
  want.erase("name");  // it is the id
  want.erase("path");  // the server's own business
  CHECK(model["specd"] == want);
  CHECK(model["specd"]["architecture"] == "llama");
  CHECK(model["specd"]["ctx_len"] == 2048);
  CHECK(model["specd"]["weight_types"][0]["type"] == "F32");
  CHECK(model["specd"]["chat_template"] == false);
  CHECK(model["specd"]["default"] == true);
  CHECK(model["specd"]["file_bytes"] == std::filesystem::file_size(model_path("stories260K.gguf")));
  CHECK(h.get("/v1/models/nope").status == 404);
  CHECK(json::parse(h.get("/health").body)["status"] == "ready");
  const auto rows = run_rows(h.d.db());
  REQUIRE(rows.size() == 7);
  for (const auto& row : rows) CHECK(row[0] == "http");
  std::string runs;  // and specctl runs shows it
  REQUIRE(run_command(build_root() + "/clients/specctl --socket " + h.d.socket() + " --json runs --last 7", &runs) == 0);
  const json listed = json::parse(runs)["runs"];
  REQUIRE(listed.size() == 7);
  for (const auto& run : listed) CHECK(run["via"] == "http");
}

TEST_CASE("http: chat renders the model's own template as jinja2 does, and greedy chat equals specd generate on that prompt") {
  const std::string vocab = shared_dir() + "/data/vocab/ggml-vocab-qwen2.gguf";
  const std::string tmpl = shared_dir() + "/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja";
  if (run_command("test -f " + vocab + " && test -f " + tmpl, nullptr) != 0) {
    MESSAGE("skipped: ../shared/data has no qwen2 vocabulary or Qwen2.5 template");
    return;
  }
  const std::string dir = temp_dir();
  const std::string model = dir + "/qwen2-chat.gguf";
  std::string out;
  REQUIRE_MESSAGE(run_command(build_root() + "/tools/specd-random-model --arch qwen2 --vocab " + vocab + " --out " + model +
                                  " --chat-template " + tmpl + " 2>&1", &out) == 0, out);
  const json messages = json::array({{{"role", "system"}, {"content", "You are terse."}},
                                     {{"role", "user"}, {"content", "Say \"hi\" twice — ünïcode 🙂"}},
                                     {{"role", "assistant"}, {"content", "hi hi"}},
                                     {{"role", "user"}, {"content", "Again."}}});
  // The oracle: Python's jinja2 renders the same template with what apply_chat_template passes.
  auto file = engine::GgufFile::open(model);
  REQUIRE(file);
  auto tok = engine::Tokenizer::from_gguf(**file);
  REQUIRE(tok);
  const json context{{"messages", messages}, {"add_generation_prompt", true}, {"bos_token", tok->token_text(tok->bos())},
                     {"eos_token", tok->token_text(tok->eos())}};
  const auto oracle = run_oracle({OracleJob{tmpl, context}});
  REQUIRE(oracle.size() == 1);
  REQUIRE_MESSAGE(oracle[0].ok, oracle[0].text);
  const std::vector<int32_t> ids = tok->tokenize(oracle[0].text, true, true);
  std::string id_list;
  for (int32_t id : ids) id_list += (id_list.empty() ? "" : ",") + std::to_string(id);
  out.clear();
  REQUIRE(run_command(build_root() + "/daemon/specd generate --model " + model + " --prompt-ids " + id_list +
                          " --max-tokens 12 --plugin-dir " + build_root() + "/plugins --json 2>/dev/null", &out) == 0);
  const std::string want = json::parse(out)["text"].get<std::string>();

  HttpDaemon h({"--model", "qwen=" + model});
  for (const bool stream : {false, true}) {
    CAPTURE(stream);
    const json req{{"model", "qwen"}, {"messages", messages}, {"max_tokens", 12}, {"temperature", 0}, {"stream", stream},
                   {"stream_options", {{"include_usage", true}}}};
    const HttpReply r = h.post("/v1/chat/completions", stream ? req.dump() : json{{"model", "qwen"}, {"messages", messages},
                                                                                 {"max_tokens", 12}, {"temperature", 0}}.dump());
    REQUIRE_MESSAGE(r.status == 200, r.body);
    if (stream) {
      bool done = false;
      CHECK(sse_text(r.body, true, &done) == want);
      CHECK(done);
    } else {
      const json body = json::parse(r.body);
      CHECK(body["usage"]["prompt_tokens"] == ids.size());
      CHECK(body["choices"][0]["message"]["content"] == want);
    }
  }
}

TEST_CASE("http: bad requests get OpenAI's error object and status, and the daemon serves on") {
  HttpDaemon h({"--max-tokens", "256"});
  struct Case {
    const char* method;
    const char* path;
    std::string body;
    int status;
  };
  const Case cases[] = {
      {"POST", "/v1/completions", "{", 400},
      {"POST", "/v1/completions", R"({"prompt":"a","temperature":-1})", 400},
      {"POST", "/v1/completions", R"({"prompt":"a","max_tokens":1000})", 400},
      {"POST", "/v1/completions", R"({"prompt":"a","model":"nope"})", 404},
      {"POST", "/v1/completions", R"({"prompt":"a","specd":{"decoder":"nope"}})", 400},
      {"POST", "/v1/completions", R"({"prompt":"a","specd":{"decoder":"ngram","options":{"bogus":1}}})", 400},
      {"POST", "/v1/completions", R"({"prompt":"a","model":"st\u0000ories"})", 400},
      {"GET", "/v1/completions", "", 405},
      {"POST", "/v1/models", "", 405},
      {"GET", "/v2/anything", "", 404},
  };
  for (const Case& c : cases) {
    const std::string path = c.path;
    CAPTURE(path);
    CAPTURE(c.body);
    const HttpReply r = std::string(c.method) == "GET" ? h.get(path) : h.post(path, c.body);
    CHECK(r.status == c.status);
    const json j = json::parse(r.body);
    CHECK(j["error"]["message"].is_string());
    CHECK(j["error"]["type"].is_string());
  }
  // A body over max_body_bytes: 413 from the HTTP layer.
  const std::string huge = R"({"prompt":")" + std::string(9 << 20, 'a') + R"("})";
  const std::string path = h.d.dir() + "/huge.json";
  write_file(path, std::vector<uint8_t>(huge.begin(), huge.end()));
  HttpReply r = curl("-H 'Content-Type: application/json' --data-binary @" + path + " " + h.base + "/v1/completions");
  CHECK(r.status == 413);
  // Malformed HTTP gets 400 and a closed connection; the daemon still answers.
  CHECK(raw_exchange(h.port, "NOT HTTP AT ALL\r\n\r\n", 3000).find("400") != std::string::npos);
  CHECK(raw_exchange(h.port, "POST /v1/completions HTTP/1.1\r\nContent-Length: zz\r\n\r\n", 3000).find(" 400 ") != std::string::npos);
  r = h.post("/v1/completions", R"({"prompt":"Once","max_tokens":4,"temperature":0})");
  CHECK(r.status == 200);
  // Rows: one per completion request that reached the API (405/404/413 and malformed HTTP are not runs).
  const auto rows = run_rows(h.d.db());
  CHECK(rows.size() == 8);
  CHECK(rows.back()[1] == "length");
}

TEST_CASE("http: slow and idle clients are cut at request_timeout_ms; the rest are served meanwhile") {
  const std::string dir = temp_dir();
  const std::string cfg = config_file(dir, "[http]\nrequest_timeout_ms = 500\n");
  HttpDaemon h({"--config", cfg});
  const auto t0 = std::chrono::steady_clock::now();
  std::thread slow([&] { (void)raw_exchange(h.port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 5000); });
  std::thread idle([&] { (void)raw_exchange(h.port, "", 5000); });
  const HttpReply r = h.post("/v1/completions", R"({"prompt":"Once","max_tokens":4,"temperature":0})");
  CHECK(r.status == 200);
  slow.join();
  idle.join();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited < 4.0);  // both were closed by the daemon, not by raw_exchange's own 5 s deadline
}

TEST_CASE("http: a connection past [http] max_connections gets 503 and is closed; once one closes, the next is served") {
  const std::string dir = temp_dir();
  const std::string cfg = config_file(dir, "[http]\nmax_connections = 2\n");
  HttpDaemon h({"--config", cfg});
  // Two idle connections hold both places (accepted in arrival order, before curl's).
  const int a = connect_loopback(h.port), b = connect_loopback(h.port);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  const HttpReply full = h.post("/v1/completions", R"({"prompt":"Once","max_tokens":2})");
  CHECK(full.status == 503);
  const json err = json::parse(full.body)["error"];
  CHECK(err["code"] == "LIMIT");
  CHECK(err["message"].get<std::string>().find("[http] max_connections = 2") != std::string::npos);
  const std::string head = raw_exchange(h.port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
  CHECK(head.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(head.find("Retry-After: 1\r\n") != std::string::npos);
  ::close(a);
  HttpReply served;
  for (int i = 0; i < 100 && served.status != 200; ++i) {  // until the daemon has seen a go
    served = h.post("/v1/completions", R"({"prompt":"Once","max_tokens":2,"temperature":0})");
    if (served.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(served.status == 200);
  ::close(b);
  HttpReply m;
  for (int i = 0; i < 100 && m.status != 200; ++i) {
    m = h.get("/metrics");
    if (m.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(m.status == 200);
  const std::string name = "\nspecd_http_connections_refused_total ";
  const size_t at = m.body.find(name);
  REQUIRE(at != std::string::npos);
  CHECK(std::atoi(m.body.c_str() + at + name.size()) >= 2);  // curl's and the raw one's; a retry above may add
}

TEST_CASE("http: on the Unix socket one user's connections are capped by limits.max_connections_per_uid (429)") {
  if (::getuid() != 0) {
    MESSAGE("skipped: needs root to take another uid");
    return;
  }
  const std::string dir = temp_dir();
  REQUIRE(::chmod(dir.c_str(), 0711) == 0);  // the socket's directory, reachable by the child's uid
  const std::string sock = dir + "/http.sock";
  HttpDaemon h({"--http", "unix:" + sock, "--socket-mode", "0666", "--max-connections-per-uid", "2"});
  // Root is not limited: it holds three connections throughout.
  const int r1 = connect_to(sock), r2 = connect_to(sock), r3 = connect_to(sock);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(one_user_over_its_http_share(sock));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "child status " << status << "; log:\n" << h.d.log());
  for (const int fd : {r1, r2, r3}) ::close(fd);
  CHECK(curl("--unix-socket " + sock + " http://localhost/v1/models").status == 200);
}

TEST_CASE("http: a client that leaves before its whole (non-streamed) answer gets its run cancelled") {
  HttpDaemon h;
  // 300 tokens at 80 ms a step: the client gives up after 0.5 s and closes its connection.
  const HttpResult r = http_request(h.port, "/v1/completions",
                                    R"({"prompt":"Once upon a time","max_tokens":300,"temperature":0,)"
                                    R"("specd":{"decoder":"misbehave","options":{"mode":"slow"}}})", 500);
  CHECK_FALSE(r.complete);
  std::string reason;
  for (int i = 0; i < 200 && reason != "cancel"; ++i) {
    const auto rows = run_rows(h.d.db());
    if (!rows.empty()) reason = rows[0][1];
    if (reason != "cancel") std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  CHECK(reason == "cancel");
}

TEST_CASE("http: SIGTERM drains: a stream in flight finishes, then the daemon exits 0") {
  HttpDaemon h;
  HttpResult streamed;
  std::thread client([&] {
    const std::string body = R"({"prompt":"Once upon a time","max_tokens":40,"temperature":0,"stream":true,)"
                             R"("specd":{"decoder":"misbehave","options":{"mode":"slow"}}})";
    streamed = http_request(h.port, "/v1/completions", body, 60000);
  });
  // Wait until the run is admitted (its start row exists), then stop the daemon under it.
  for (int i = 0; i < 500 && run_rows(h.d.db()).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  h.d.signal(SIGTERM);
  client.join();
  CHECK(h.d.wait_exit(30000) == 0);
  REQUIRE(streamed.complete);
  CHECK(streamed.status == 200);
  bool done = false;
  (void)sse_text(streamed.body, false, &done);
  CHECK(done);
  CHECK(streamed.body.find(R"("finish_reason":"length")") != std::string::npos);
  const auto rows = run_rows(h.d.db());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][1] == "length");
}

TEST_CASE("http: an API key guards TCP; a non-loopback listener without one refuses to start") {
  const std::string dir = temp_dir();
  const std::string key = dir + "/key";
  write_file(key, std::vector<uint8_t>{'s', '3', 'c', 'r', 'e', 't', '\n'});
  {
    HttpDaemon h({"--api-key-file", key});
    HttpReply r = h.post("/v1/completions", R"({"prompt":"Once","max_tokens":2})");
    CHECK(r.status == 401);
    CHECK(json::parse(r.body)["error"]["code"] == "invalid_api_key");
    CHECK(h.post("/v1/completions", R"({"prompt":"Once","max_tokens":2})", "-H 'Authorization: Bearer s3cre'").status == 401);
    CHECK(h.post("/v1/completions", R"({"prompt":"Once","max_tokens":2})", "-H 'Authorization: Bearer s3cret'").status == 200);
    CHECK(h.get("/metrics").status == 401);
    CHECK(h.get("/health").status == 200);  // for load balancers' probes
  }
  DaemonProcess d({"--http", "0.0.0.0:" + std::to_string(free_port())});
  CHECK(d.wait_exit(20000) == 2);
  CHECK(d.log().find("without an API key") != std::string::npos);
}

TEST_CASE("http: the Unix-socket listener applies the socket's peer checks") {
  const std::string dir = temp_dir();
  const std::string cfg = config_file(dir, "[access]\nallow_uids = [4242424]\n");
  const std::string sock = dir + "/http.sock";
  {
    HttpDaemon h({"--config", cfg, "--http", "unix:" + sock});
    const HttpReply r = curl("--unix-socket " + sock + " http://localhost/v1/models");
    CHECK(r.status == 403);
    CHECK(json::parse(r.body)["error"]["message"].get<std::string>().find("not allowed") != std::string::npos);
  }
  HttpDaemon open({"--http", "unix:" + sock});
  const HttpReply r = curl("--unix-socket " + sock + " -H 'Content-Type: application/json' --data-binary '{\"prompt\":\"Once\",\"max_tokens\":3}' "
                           "http://localhost/v1/completions");
  CHECK(r.status == 200);
}

TEST_CASE("http: /metrics passes promtool and counts what ran") {
  HttpDaemon h;
  REQUIRE(h.post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":8,"temperature":0,"specd":{"decoder":"ngram"}})").status == 200);
  REQUIRE(h.post("/v1/completions", R"({"prompt":"Once","model":"nope"})").status == 404);
  const HttpReply m = h.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.body.find("specd_requests_total{via=\"http\",outcome=\"length\"} 1") != std::string::npos);
  CHECK(m.body.find("specd_requests_total{via=\"http\",outcome=\"error\"} 1") != std::string::npos);
  CHECK(m.body.find("specd_decoder_forwards_total{decoder=\"ngram\"}") != std::string::npos);
  CHECK(m.body.find("specd_kv_cache_usage_ratio") != std::string::npos);
  CHECK(m.body.find("\nspecd_kv_cache_reserved_ratio 0\n") != std::string::npos);  // both requests ended: nothing promised
  std::string where;
  REQUIRE_MESSAGE(run_command("command -v promtool", &where) == 0, "promtool is missing: scripts/setup.sh installs Debian's prometheus");
  const std::string path = h.d.dir() + "/metrics.txt";
  write_file(path, std::vector<uint8_t>(m.body.begin(), m.body.end()));
  std::string out;
  const int rc = run_command("promtool check metrics < " + path + " 2>&1", &out);
  CHECK_MESSAGE(rc == 0, out);
}

TEST_CASE("http: the official openai npm client: completions, chat, streams, errors and an aborted stream") {
  const std::string dir = cache_dir() + "/npm/openai-" + kOpenAiVersion;
  std::string out;
  if (run_command("test -f " + dir + "/node_modules/openai/package.json", nullptr) != 0) {
    REQUIRE_MESSAGE(run_command("command -v node && command -v npm", &out) == 0, "Node.js and npm are needed for this test");
    const int rc = run_command("mkdir -p " + dir + " && npm install --no-audit --no-fund --prefix " + dir + " openai@" + kOpenAiVersion + " 2>&1", &out);
    REQUIRE_MESSAGE(rc == 0, out);
  }
  HttpDaemon h;
  out.clear();
  const int rc = run_command("node " + source_root() + "/tests/http/openai_client.mjs " + dir + "/node_modules " + h.base + "/v1 stories 2>&1", &out);
  REQUIRE_MESSAGE(rc == 0, out);
  const json j = json::parse(out);
  const std::string want = generate_text("Once upon a time", 24, "ar");
  CHECK(j["completion"]["text"] == want);
  CHECK(j["completion"]["finish_reason"] == "length");
  CHECK(j["completion_ngram"]["text"] == generate_text("Once upon a time", 24, "ngram"));
  CHECK(j["completion_ngram"]["decoder"] == "ngram");
  CHECK(j["completion_stream"]["text"] == want);
  CHECK(j["completion_stream"]["usage"]["completion_tokens"] == 24);
  CHECK(j["chat"]["role"] == "assistant");
  CHECK(j["chat"]["object"] == "chat.completion");
  CHECK(j["chat"]["usage"]["completion_tokens"].get<int>() >= 1);
  CHECK(j["chat_stream"]["text"] == j["chat"]["text"]);
  CHECK(j["unknown_model"]["status"] == 404);
  CHECK(j["bad_temperature"]["status"] == 400);
  CHECK(j["bad_temperature"]["param"] == "temperature");
  CHECK(j["aborted"]["chunks"].get<int>() >= 2);
  CHECK(j["models"] == json::array({"stories"}));
  CHECK(j["model"]["id"] == "stories");
  CHECK(j["model"]["object"] == "model");
  CHECK(j["model"]["specd"]["architecture"] == "llama");  // the extension reaches a client that does not know it
  // The aborted stream's run was cancelled when its client went away, and its row says so.
  bool cancelled = false;
  for (int i = 0; i < 200 && !cancelled; ++i) {
    for (const auto& row : run_rows(h.d.db())) cancelled |= row[1] == "cancel";
    if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(cancelled);
}

}  // namespace specd::test
