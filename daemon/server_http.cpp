// Server, the HTTP side: the OpenAI-compatible API (README "HTTP API") on the same loop, requests,
// engine and run log as the socket protocol. An HTTP completion request is a Request like a
// Generate frame, keyed by a connection id of its own; its bytes (SSE chunks or one JSON body) take
// the same held-until-durable path as frames, through deliver().
#include "daemon/server.h"

#include "daemon/chat_prompt.h"
#include "daemon/generate_checks.h"
#include "daemon/wire_encode.h"

#include <specd/decoder.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

namespace specd::daemon {
namespace {

using json = nlohmann::json;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

// Compares every byte whatever the first difference, so response timing does not reveal how much
// of the key a guess got right (only whether its length is right).
bool same_secret(std::string_view given, std::string_view key) {
  if (given.size() != key.size() || key.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i]);
  return diff == 0;
}

OpenAiError http_error(int status, std::string message, std::string type, std::string code = "") {
  OpenAiError e;
  e.http_status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

}  // namespace

Status Server::start_http() {
  if (cfg_.http.listen.empty()) return {};
  HttpListenOptions o;
  for (const std::string& text : cfg_.http.listen) {
    auto a = parse_http_address(text);
    if (!a) return a.error();
    o.addresses.push_back(a.value());
  }
  o.max_body_bytes = cfg_.http.max_body_bytes;
  o.request_timeout_ms = static_cast<uint64_t>(cfg_.http.request_timeout_ms);
  o.unix_socket_mode = cfg_.socket_mode;
  o.check_peer = [this](const PeerCred& p) { return peer_allowed(cfg_, p) ? std::string() : refusal_reason(p); };
  o.admit = [this](const HttpPeer& p, int64_t open, int64_t open_same_uid, std::string* body) { return http_admit(p, open, open_same_uid, body); };
  auto l = HttpListener::start(&loop_, std::move(o), this);
  if (!l) return l.error();
  http_ = std::move(l.value());
  if (int rc = uv_timer_init(&loop_, http_watch_.get()); rc != 0) return make_error(SPECD_E_IO, "uv_timer_init: %s", uv_strerror(rc));
  http_watch_.initialized();
  http_watch_.get()->data = this;
  uv_timer_start(http_watch_.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->http_watch_clients(); }, 200, 200);
  for (const std::string& text : cfg_.http.listen) std::fprintf(stderr, "specd: HTTP API on %s\n", text.c_str());
  return {};
}

// HTTP/1.1 answers one request at a time per connection, so capping connections caps what one
// client holds: in all ([http] max_connections: 503, the server is full) and, on the Unix socket,
// per uid (the socket's [limits] max_connections_per_uid, counted over HTTP connections: 429). TCP
// peers have no uid; a refused peer (403 on its request) is left to the peer checks.
int Server::http_admit(const HttpPeer& peer, int64_t open, int64_t open_same_uid, std::string* body) const {
  if (open >= cfg_.http.max_connections) {
    *body = error_body(http_error(503, "too many HTTP connections ([http] max_connections = " + std::to_string(cfg_.http.max_connections) + ")",
                                  "server_error", "LIMIT"));
    return 503;
  }
  if (peer.unix_socket && peer.refusal.empty() && limited_uid(peer.cred.uid) && open_same_uid >= cfg_.limits.max_connections_per_uid) {
    *body = error_body(openai_error_of(Error{SPECD_E_LIMIT, "uid " + std::to_string(peer.cred.uid) + " already has " + std::to_string(open_same_uid) +
                                                                " HTTP connections open (limits.max_connections_per_uid)"}));
    return 429;
  }
  return 0;
}

void Server::http_respond_error(HttpExchange& x, const OpenAiError& e) {
  x.respond(e.http_status, "application/json", error_body(e));
}

void Server::on_http_request(HttpExchange& x) {
  const std::string_view path = x.path(), method = x.method();
  if (!x.peer().refusal.empty())
    return http_respond_error(x, http_error(403, "access denied: " + x.peer().refusal, "permission_error", "ACCESS"));
  if (path == "/health") {
    if (method != "GET") return http_respond_error(x, http_error(405, "use GET for /health", "invalid_request_error"));
    return x.respond(draining_ ? 503 : 200, "application/json", json{{"status", draining_ ? "draining" : "ready"}}.dump());
  }
  // TCP listeners need the key when one is set; the Unix socket's peer checks stand in for it.
  if (!x.peer().unix_socket && !cfg_.http.api_key.empty()) {
    const std::string auth = x.header("authorization");
    if (auth.rfind("Bearer ", 0) != 0 || !same_secret(std::string_view(auth).substr(7), cfg_.http.api_key))
      return http_respond_error(x, http_error(401, "missing or wrong API key (send Authorization: Bearer KEY)", "invalid_request_error",
                                              "invalid_api_key"));
  }
  const bool get = method == "GET", post = method == "POST";
  if (path == "/metrics" && get)
    return x.respond(200, "text/plain; version=0.0.4; charset=utf-8",
                     metrics_.render(worker_ ? worker_->snapshot() : EngineSnapshot{}, http_ ? http_->connections() : 0,
                                     http_ ? http_->refused() : 0));
  if ((path == "/v1/models" || path.rfind("/v1/models/", 0) == 0) && get) return http_models(x);
  if (path == "/v1/completions" && post) return http_generate(x, OpenAiEndpoint::Completions);
  if (path == "/v1/chat/completions" && post) return http_generate(x, OpenAiEndpoint::ChatCompletions);
  const bool known = path == "/metrics" || path == "/v1/completions" || path == "/v1/chat/completions" || path == "/v1/models";
  if (known) return http_respond_error(x, http_error(405, "method " + std::string(method) + " is not allowed on " + std::string(path),
                                                     "invalid_request_error"));
  http_respond_error(x, http_error(404, "no such endpoint: " + std::string(path), "invalid_request_error", "not_found"));
}

void Server::http_models(HttpExchange& x) {
  const std::string_view path = x.path();
  const std::vector<ModelInfo> models = worker_ ? model_infos(worker_->snapshot()) : std::vector<ModelInfo>{};
  if (path.size() > std::string_view("/v1/models/").size()) {
    const std::string name(path.substr(std::string_view("/v1/models/").size()));
    for (const ModelInfo& m : models)
      if (m.name == name) return x.respond(200, "application/json", openai_model(m).dump());
    return http_respond_error(x, http_error(404, "model '" + printable(name) + "' is not loaded", "invalid_request_error", "model_not_found"));
  }
  json data = json::array();
  for (const ModelInfo& m : models) data.push_back(openai_model(m));
  x.respond(200, "application/json", json{{"object", "list"}, {"data", data}}.dump());
}

// A completion request refused before the engine saw it: its run-log row, then its error.
void Server::http_reject(HttpExchange& x, Request r, const OpenAiError& e, int code) {
  r.model = printable(std::move(r.model));
  r.decoder = printable(std::move(r.decoder));
  const Error err{code, e.message};
  const RunTicket t = log_run(r, nullptr, &err);
  metrics_.request_finished(r.via, r.decoder, "error", nullptr, 0);
  const uint64_t conn = next_conn_++;
  HttpCall call;
  call.x = &x;
  call.final_status = e.http_status;
  call.error_body = error_body(e);
  http_calls_.emplace(conn, std::move(call));
  http_conn_of_[x.id()] = conn;
  send_when_durable(Closing{RequestKey{conn, 1}, t.seq, true, {bytes_of(error_body(e))}});
}

void Server::http_generate(HttpExchange& x, OpenAiEndpoint endpoint) {
  const bool chat = endpoint == OpenAiEndpoint::ChatCompletions;
  Request r;
  r.via = "http";
  r.started_unix_ms = unix_ms();
  r.peer = x.peer().cred;
  OpenAiRequest q;
  OpenAiError perr;
  if (!parse_openai_request(endpoint, x.body(), cfg_.limits.max_tokens, &q, &perr)) {
    r.model = q.model;
    return http_reject(x, std::move(r), perr, SPECD_E_INVALID_ARG);
  }
  r.model = q.model.empty() ? worker_->default_model() : q.model;
  r.decoder = q.decoder;
  r.options = q.options_json;
  r.stream = q.stream;
  for (const auto& [name, field] : {std::pair{&r.model, "model"}, std::pair{&r.decoder, "decoder"}})
    if (Status st = check_name(*name, field); !st) return http_reject(x, std::move(r), openai_error_of(st.error()), st.error().code);
  if (draining_) {
    const Error e{SPECD_E_CANCELED, "the daemon is shutting down"};
    return http_reject(x, std::move(r), openai_error_of(e), e.code);
  }
  auto m = worker_->models().find(r.model);
  if (m == worker_->models().end()) {
    const Error e{SPECD_E_UNKNOWN_MODEL, "model '" + r.model + "' is not loaded (GET /v1/models lists them)"};
    return http_reject(x, std::move(r), openai_error_of(e), e.code);
  }
  const uint64_t conn = next_conn_++;
  GenerateJob job;
  job.key = RequestKey{conn, 1};
  job.model = r.model;
  if (chat) {
    auto prompt = chat_prompt(*m->second, q.messages, q.tools);
    if (!prompt) return http_reject(x, std::move(r), openai_error_of(prompt.error()), prompt.error().code);
    job.prompt_text = std::move(prompt.value());
    job.parse_special = true;  // the template's own markers (<|im_start|>, ...) are special tokens
  } else {
    job.prompt_text = q.prompt;
    job.req.prompt = q.prompt_ids;
  }
  // OpenAI's documented default for completions is 16 tokens; a chat answer runs to its end of turn.
  job.req.max_tokens = q.max_tokens > 0 ? q.max_tokens : chat ? cfg_.limits.max_tokens : std::min(16, cfg_.limits.max_tokens);
  job.req.sampling.temperature = q.temperature;
  job.req.sampling.top_p = q.top_p;
  job.req.sampling.seed = q.has_seed ? q.seed : static_cast<uint64_t>(r.started_unix_ms);
  job.req.stop_strings = q.stop;
  job.req.decoder = q.decoder;
  job.req.options_json = q.options_json;
  if (Status st = worker_->submit(std::move(job)); !st) return http_reject(x, std::move(r), openai_error_of(st.error()), st.error().code);
  const RunTicket t = log_run(r, nullptr, nullptr);
  r.run_id = t.id;
  r.start_seq = t.seq;
  HttpCall call;
  call.x = &x;
  call.reply.endpoint = endpoint;
  call.reply.id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(t.id);
  call.reply.created = r.started_unix_ms / 1000;
  call.reply.model = r.model;
  call.stream = q.stream;
  call.include_usage = q.include_usage;
  http_calls_.emplace(conn, std::move(call));
  http_conn_of_[x.id()] = conn;
  requests_.emplace(RequestKey{conn, 1}, std::move(r));
}

std::vector<uint8_t> Server::http_token_frame(const RequestKey& key, std::string_view text) {
  auto it = http_calls_.find(key.conn);
  if (it == http_calls_.end()) return {};
  HttpCall& call = it->second;
  const bool chat = call.reply.endpoint == OpenAiEndpoint::ChatCompletions;
  if (text.empty() && (!chat || call.role_sent)) return {};
  const bool role = chat && !call.role_sent;
  call.role_sent = true;
  return bytes_of(stream_chunk(call.reply, text, nullptr, role));
}

// The rest of the answer: the whole body, or a stream's last chunk, usage and [DONE]. A failed run
// answers with OpenAI's error object (and, for a stream not yet started, its status).
std::vector<uint8_t> Server::http_final_frame(const RequestKey& key, const Request& r, const EngineEvent& e, int64_t run_id) {
  auto it = http_calls_.find(key.conn);
  if (it == http_calls_.end()) return {};
  HttpCall& call = it->second;
  if (e.result.finish_reason == SPECD_FINISH_ERROR) {
    const OpenAiError err = openai_error_of(e.result.error);
    call.final_status = err.http_status;
    call.error_body = error_body(err);
    return bytes_of(call.stream ? stream_error(err) + std::string(stream_done()) : call.error_body);
  }
  const UsageFigures u = usage_of(e.result, e.prompt_tokens);
  const OpenAiUsage usage{u.prompt_tokens, u.generated_tokens, run_id, r.decoder, u.forwards, e.result.tokens_per_forward()};
  const char* finish = openai_finish_reason(e.result.finish_reason);
  if (!call.stream) return bytes_of(completion_body(call.reply, r.text, finish, usage));
  const bool chat = call.reply.endpoint == OpenAiEndpoint::ChatCompletions;
  std::string out = stream_chunk(call.reply, "", finish, chat && !call.role_sent);
  if (call.include_usage) out += stream_usage_chunk(call.reply, usage);
  out += stream_done();
  return bytes_of(out);
}

void Server::http_deliver(HttpCall& call, std::vector<uint8_t> frame, bool last) {
  if (!call.x) return;  // the client went away; the run was cancelled
  HttpExchange& x = *call.x;
  std::string bytes(frame.begin(), frame.end());
  if (!call.stream || (last && !x.started() && call.final_status != 200)) {
    if (last) x.respond(call.final_status, "application/json", call.final_status == 200 ? std::move(bytes) : call.error_body);
    return;
  }
  if (!x.started()) x.start_stream("text/event-stream");
  x.write(std::move(bytes), last);
}

// h2o is freeing x: its response went out, or its client disconnected first (then its run, if still
// going, is cancelled and its row says so).
void Server::on_http_gone(HttpExchange& x) {
  auto c = http_conn_of_.find(x.id());
  if (c == http_conn_of_.end()) return;
  const uint64_t conn = c->second;
  http_conn_of_.erase(c);
  http_calls_.erase(conn);
  if (requests_.count(RequestKey{conn, 1}) && worker_) worker_->cancel(RequestKey{conn, 1});
}

// A client that left while its run was still going gets the run cancelled (its row says so), as a
// socket client that closes its connection does; checked every 200 ms without reading from it.
void Server::http_watch_clients() {
  for (const auto& [conn, call] : http_calls_) {
    const RequestKey key{conn, 1};
    if (call.x && requests_.count(key) && call.x->client_gone()) worker_->cancel(key);
  }
}

// The drain's last step: wait (briefly) for HTTP connections to finish their responses and close,
// then close h2o's context so the loop can end.
void Server::http_finish_drain() {
  if (!http_) return;
  http_watch_.close();
  http_->stop_accepting();
  http_drain_started_ = std::chrono::steady_clock::now();
  if (uv_timer_init(&loop_, http_timer_.get()) != 0) return http_->shutdown();
  http_timer_.initialized();
  http_timer_.get()->data = this;
  uv_timer_start(http_timer_.get(), [](uv_timer_t* t) {
    auto* s = static_cast<Server*>(t->data);
    const double waited_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s->http_drain_started_).count();
    if (s->http_->connections() > 0 && waited_ms < s->cfg_.http.request_timeout_ms + 1000.0) return;
    s->http_->shutdown();
    s->http_timer_.close();
  }, 20, 20);
}

}  // namespace specd::daemon
