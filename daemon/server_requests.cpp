// Server, the request side: frames → Hello/Generate/Cancel/Status/ListRuns, engine events → frames
// and run-log rows.
#include "daemon/server.h"

#include "daemon/chat_messages.h"
#include "daemon/generate_checks.h"
#include "daemon/log.h"
#include "daemon/wire_encode.h"
#include "protocol_generated.h"

#include <specd/decoder.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <algorithm>
#include <optional>

namespace specd::daemon {
namespace {

constexpr int32_t kMaxListedRuns = 1000;

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string str_of(const flatbuffers::String* s, const char* def = "") { return s ? s->str() : def; }

GenerateJob job_of(const wire::Generate& g, RequestKey key) {
  GenerateJob j;
  j.key = key;
  j.model = str_of(g.model());
  if (g.prompt_ids() && g.prompt_ids()->size() > 0) j.req.prompt.assign(g.prompt_ids()->begin(), g.prompt_ids()->end());
  else j.prompt_text = str_of(g.prompt_text());
  j.req.max_tokens = g.max_tokens();
  if (const wire::Sampling* s = g.sampling()) {
    j.req.sampling.temperature = s->temperature();
    j.req.sampling.top_k = s->top_k();
    j.req.sampling.top_p = s->top_p();
    j.req.sampling.min_p = s->min_p();
    j.req.sampling.seed = s->seed();
  }
  if (g.stop_strings())
    for (const auto* s : *g.stop_strings())
      if (s && s->size() > 0) j.req.stop_strings.push_back(s->str());
  j.req.keep_stop = g.keep_stop();
  j.req.decoder = str_of(g.decoder());
  if (j.req.decoder.empty()) j.req.decoder = "ar";
  j.req.options_json = str_of(g.decoder_options_json());
  if (j.req.options_json.empty()) j.req.options_json = "{}";
  return j;
}

struct QueryWork {
  uv_work_t req{};
  Server* server = nullptr;
  RunLog* runlog = nullptr;
  uint64_t conn = 0, rid = 0;
  RunQuery query;
  std::optional<Result<std::vector<RunRecord>>> result;
  uint64_t dropped = 0;
};

}  // namespace

void Server::on_frame(Connection& c, const std::vector<uint8_t>& frame) {
  const wire::Envelope* env = wire::GetEnvelope(frame.data());  // FrameReader verified it
  const uint64_t rid = env->request_id();
  // The verifier accepts a union type without its table; every handler below needs the table.
  if (env->body_type() != wire::Body::NONE && env->body() == nullptr)
    return send(c, encode_error(rid, SPECD_E_PROTOCOL, "a message of type " + std::to_string(static_cast<int>(env->body_type())) +
                                                           " without its body"));
  // Hello comes first: anything else before it ends the connection.
  if (!c.greeted && env->body_type() != wire::Body::Hello) {
    const auto t = env->body_type();
    const char* name = t <= wire::Body::MAX ? wire::EnumNameBody(t) : "";
    send(c, encode_error(0, SPECD_E_PROTOCOL, std::string("the first message must be Hello, not '") +
                                                  (*name ? name : std::to_string(static_cast<int>(t)).c_str()) + "'"));
    return drop(c);
  }
  switch (env->body_type()) {
    case wire::Body::Hello: return handle_hello(c, *env);
    case wire::Body::Generate: return handle_generate(c, rid, env->body_as_Generate());
    case wire::Body::Cancel:
      if (c.requests.count(rid)) worker_->cancel(RequestKey{c.id(), rid});
      return;  // an id that already finished (or never ran) needs no answer
    case wire::Body::StatusRequest: return handle_status(c, rid);
    case wire::Body::ListRuns: return handle_list_runs(c, *env);
    default: break;
  }
  // A message only the daemon sends, NONE, or a union member newer than this daemon: refused,
  // and the connection stays usable (a newer client may probe).
  const auto t = env->body_type();
  const char* name = t <= wire::Body::MAX ? wire::EnumNameBody(t) : "";
  send(c, encode_error(rid, SPECD_E_PROTOCOL,
                       *name ? std::string("the daemon does not accept '") + name + "' messages"
                             : "unknown message type " + std::to_string(static_cast<int>(t))));
}

void Server::handle_hello(Connection& c, const wire::Envelope& env) {
  const wire::Hello* h = env.body_as_Hello();
  if (c.greeted) return send(c, encode_error(env.request_id(), SPECD_E_PROTOCOL, "a second Hello on this connection"));
  if (h->protocol_version() != kProtocolVersion) {
    send(c, encode_error(env.request_id(), SPECD_E_VERSION,
                         "protocol version " + std::to_string(h->protocol_version()) + " is not supported (the daemon speaks 1)"));
    return drop(c);
  }
  WelcomeInfo w;
  w.daemon_version = SPECD_VERSION;
  w.max_frame_bytes = cfg_.limits.max_frame_bytes;
  w.max_tokens = cfg_.limits.max_tokens;
  w.max_prompt_tokens = worker_->max_prompt_tokens();
  send(c, encode_welcome(env.request_id(), w));
  c.greeted = true;
  c.touch();
  c.set_deadline(static_cast<uint64_t>(cfg_.limits.idle_timeout_ms));  // 0: no idle timeout
}

void Server::handle_generate(Connection& c, uint64_t rid, const wire::Generate* g) {
  Request r;
  r.started_unix_ms = unix_ms_now();
  r.peer = c.peer();
  r.model = str_of(g->model());
  if (r.model.empty()) r.model = worker_->default_model();
  r.decoder = str_of(g->decoder());
  if (r.decoder.empty()) r.decoder = "ar";
  r.options = str_of(g->decoder_options_json());
  if (r.options.empty()) r.options = "{}";
  r.stream = g->stream();
  const RequestKey key{c.id(), rid};
  if (c.requests.count(rid) || requests_.count(key)) return refuse_duplicate(c, rid);
  if (static_cast<int64_t>(c.requests.size()) >= cfg_.limits.max_requests_per_connection)
    return reject(c, rid, std::move(r), make_error(SPECD_E_LIMIT, "this connection already has %zu requests in flight (limits.max_requests_per_connection)",
                                                   c.requests.size()));
  if (const int64_t n = requests_of(c.peer().uid); limited_uid(c.peer().uid) && n >= cfg_.limits.max_requests_per_uid)
    return reject(c, rid, std::move(r), make_error(SPECD_E_LIMIT, "uid %d already has %lld requests in flight (limits.max_requests_per_uid)",
                                                   c.peer().uid, static_cast<long long>(n)));
  if (Status st = check_generate(*g, cfg_.limits); !st) {
    r.model = printable(std::move(r.model));
    r.decoder = printable(std::move(r.decoder));
    return reject(c, rid, std::move(r), st.error());
  }
  GenerateJob job = job_of(*g, key);
  if (g->messages() && g->messages()->size() > 0) {
    // Rendered here, on the loop, as the HTTP API does: a template renders in microseconds.
    const auto m = worker_->models().find(r.model);
    if (m == worker_->models().end())
      return reject(c, rid, std::move(r), make_error(SPECD_E_UNKNOWN_MODEL, "model '%s' is not loaded", r.model.c_str()));
    auto prompt = conversation_prompt(*m->second, *g->messages());
    if (!prompt) return reject(c, rid, std::move(r), prompt.error());
    job.prompt_text = std::move(prompt->text);
    job.parse_special = prompt->parse_special;
  }
  if (Status st = worker_->submit(std::move(job)); !st) return reject(c, rid, std::move(r), st.error());
  const RunTicket t = log_run(r, nullptr, nullptr);  // the start row, replaced by the final one
  r.run_id = t.id;
  r.start_seq = t.seq;
  c.requests.insert(rid);
  requests_.emplace(key, std::move(r));
}

// A Generate refused before the engine saw it still gets its row, before its Error goes out.
void Server::reject(Connection& c, uint64_t rid, Request req, const Error& e) {
  const RunTicket t = log_run(req, nullptr, &e);
  metrics_.request_finished(req.via, req.decoder, "error", nullptr, 0);
  send_when_durable(Closing{RequestKey{c.id(), rid}, t.seq, false, {encode_error(rid, e.code, e.message)}});
}

// A Generate reusing an id still in flight is no run and gets no row: its Error goes out after the
// original's last frame, so a client matching frames by id still sees the original end normally.
void Server::refuse_duplicate(Connection& c, uint64_t rid) {
  auto frame = encode_error(rid, SPECD_E_PROTOCOL, "request_id " + std::to_string(rid) + " is already in flight on this connection");
  if (auto it = requests_.find(RequestKey{c.id(), rid}); it != requests_.end()) return it->second.after.push_back(std::move(frame));
  for (Closing& cl : closing_)
    if (cl.ends_request && cl.key == RequestKey{c.id(), rid}) return cl.frames.push_back(std::move(frame));
  send(c, std::move(frame));
}

std::vector<ModelInfo> Server::model_infos(const EngineSnapshot& engine) const {
  std::vector<ModelInfo> out;
  for (const auto& [name, m] : worker_->models()) {
    ModelInfo info{name, m->path(), m->config().vocab, m->config().ctx_len, m->weight_bytes(), "", 0, 0,
                   engine::summarize_model(m->file()), m->file().find("tokenizer.chat_template") != nullptr,
                   name == worker_->default_model()};
    for (const ModelDeviceSnapshot& d : engine.devices) {
      if (d.model != name) continue;
      info.device = d.device, info.device_memory_used = d.memory_used, info.device_memory_total = d.memory_total;
      info.kv_blocks_total = d.kv_blocks_total, info.kv_blocks_free = d.kv_blocks_free, info.kv_blocks_reserved = d.kv_blocks_reserved;
    }
    out.push_back(std::move(info));
  }
  return out;
}

void Server::handle_status(Connection& c, uint64_t rid) {
  StatusInfo s;
  s.daemon_version = SPECD_VERSION;
  s.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  s.engine = worker_->snapshot();
  s.models = model_infos(s.engine);
  s.connections = static_cast<int32_t>(conns_.size());
  send(c, encode_status(rid, s));
}

// SQLite reads run on libuv's worker pool so the loop never waits on the database.
void Server::handle_list_runs(Connection& c, const wire::Envelope& env) {
  const wire::ListRuns* l = env.body_as_ListRuns();
  if (l->last() < 1)
    return send(c, encode_error(env.request_id(), SPECD_E_INVALID_ARG, "ListRuns.last must be at least 1, got " + std::to_string(l->last())));
  auto w = std::make_unique<QueryWork>();
  w->req.data = w.get();
  w->server = this;
  w->runlog = &runlog_;
  w->conn = c.id();
  w->rid = env.request_id();
  w->query.last = std::min(l->last(), kMaxListedRuns);
  w->query.decoder = str_of(l->decoder());
  w->query.model = str_of(l->model());
  w->query.since_unix_ms = l->since_unix_ms();
  const int rc = uv_queue_work(&loop_, &w->req,
      [](uv_work_t* req) {
        auto* q = static_cast<QueryWork*>(req->data);
        try {
          q->result = q->runlog->query(q->query);
        } catch (const std::exception& e) {
          q->result = make_error(SPECD_E_INTERNAL, "run log query failed: %s", e.what());
        }
        q->dropped = q->runlog->dropped();
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<QueryWork> q(static_cast<QueryWork*>(req->data));
        Connection* conn = q->server->find_connection(q->conn);
        if (!conn) return;
        if (!q->result || !q->result->has_value()) {
          const Error e = q->result ? q->result->error() : Error{SPECD_E_CANCELED, "query cancelled"};
          return q->server->send(*conn, encode_error(q->rid, e.code, e.message));
        }
        q->server->send(*conn, encode_run_list(q->rid, q->result->value(), q->dropped));
      });
  if (rc != 0) return send(c, encode_error(env.request_id(), SPECD_E_INTERNAL, uv_strerror(rc)));
  w.release();  // owned by libuv until the after-work callback
}

void Server::on_engine_events() {
  if (!worker_) return;
  events_.clear();
  worker_->take_events(&events_);
  for (auto& e : events_) {
    if (e.kind == EngineEvent::Kind::Tokens) on_tokens(e);
    else on_finished(e);
  }
  worker_->recycle_events(&events_);
  if (worker_->take_rescanned() && !draining_) {  // a SIGHUP reload is done (Server::notify_reloading)
    std::fprintf(stderr, "specd: plugin rescan done\n");
    sd_notify(0, "READY=1");
    notify_status();
  }
  release_durable();  // the run log's writer wakes the loop through the same handle
  if (exit_code_ == 0) {
    if (const std::string lost = worker_->device_lost(); !lost.empty()) {
      // Its requests already failed with SPECD_E_DEVICE; the device will not come back in this process.
      std::fprintf(stderr, "specd: %s; draining and exiting with status %d so the service manager restarts the daemon\n",
                   lost.c_str(), kExitDeviceLost);
      exit_code_ = kExitDeviceLost;
      if (!draining_) begin_drain();
    }
  }
  maybe_finish_drain();
}

void Server::on_tokens(EngineEvent& e) {
  auto it = requests_.find(e.key);
  if (it == requests_.end()) return;
  Request& r = it->second;
  // e.text is the runtime's detokenization of e.tokens (the one the stop-string scan read), not redone here.
  r.text += e.text;
  const std::string complete = r.utf8.push(e.text);  // a split character waits for the next event
  if (!r.stream) return;
  auto frame = r.via == "http" ? http_token_frame(e.key, complete) : encode_token_event(e.key.id, e.tokens, complete, e.step);
  if (frame.empty()) return;
  if (!r.held.empty() || runlog_.durable_seq() < r.start_seq) return r.held.push_back(std::move(frame));
  deliver(e.key, std::move(frame), false);
}

void Server::on_finished(EngineEvent& e) {
  auto it = requests_.find(e.key);
  if (it == requests_.end()) return;
  Request r = std::move(it->second);
  requests_.erase(it);
  const bool failed = e.result.finish_reason == SPECD_FINISH_ERROR;
  const RunTicket t = log_run(r, &e, failed ? &e.result.error : nullptr);
  metrics_.request_finished(r.via, r.decoder, finish_reason_name(e.result.finish_reason), &e.result, e.prompt_tokens);
  Closing last{e.key, t.seq, true, std::move(r.held)};
  if (r.via == "http") last.frames.push_back(http_final_frame(e.key, r, e, r.run_id));
  else last.frames.push_back(failed ? encode_error(e.key.id, e.result.error.code, e.result.error.message)
                                    : encode_finished(e.key.id, e.result, e.prompt_tokens, r.text, t.id));
  for (auto& f : r.after) last.frames.push_back(std::move(f));
  send_when_durable(std::move(last));
}

// Sends at once what is already durable (and has nothing older waiting); holds the rest.
void Server::send_when_durable(Closing closing) {
  if (closing_.empty() && runlog_.durable_seq() >= closing.seq) {
    closing_.push_back(std::move(closing));
    return release_durable();
  }
  closing_.push_back(std::move(closing));
}

// Sends every held frame whose record is now durable: TokenEvents whose start row committed, then
// final frames in ticket order. A request's id leaves its connection when its last frame is sent,
// so the client cannot reuse it while the daemon still holds its answer.
void Server::release_durable() {
  const uint64_t durable = runlog_.durable_seq();
  for (auto& [key, r] : requests_) {
    if (r.held.empty() || r.start_seq > durable) continue;
    for (auto& f : r.held) deliver(key, std::move(f), false);
    r.held.clear();
  }
  size_t done = 0;
  for (; done < closing_.size() && closing_[done].seq <= durable; ++done) {
    Closing& cl = closing_[done];
    if (Connection* c = find_connection(cl.key.conn); c && cl.ends_request) {
      c->requests.erase(cl.key.id);
      c->touch();  // idle time counts from the end of its last request
    }
    for (size_t i = 0; i < cl.frames.size(); ++i)
      deliver(cl.key, std::move(cl.frames[i]), cl.ends_request && i + 1 == cl.frames.size());
  }
  closing_.erase(closing_.begin(), closing_.begin() + static_cast<std::ptrdiff_t>(done));
}

// A socket request's frames go to its connection (while it is open); an HTTP request's to its exchange.
void Server::deliver(const RequestKey& key, std::vector<uint8_t> frame, bool last) {
  if (Connection* c = find_connection(key.conn)) {
    if (!c->closing()) send(*c, std::move(frame));
    return;
  }
  if (auto it = http_calls_.find(key.conn); it != http_calls_.end()) http_deliver(it->second, std::move(frame), last);
}

// The request's line in the log, at info level: what the run log's row says, for `journalctl -f`.
static void log_finished(const RunRecord& r, double tpf) {
  log_line(LogLevel::Info, "run %lld: model %s, decoder %s, %d prompt + %d generated tokens, TPF %.2f, %.1f tok/s, "
           "TTFT %.0f ms, %s%s%s", static_cast<long long>(r.id), r.model.c_str(), r.decoder.c_str(), r.prompt_tokens,
           r.generated_tokens, tpf, r.decode_tok_s, r.ttft_ms, r.finish_reason.c_str(), r.error.empty() ? "" : ": ",
           r.error.c_str());
}

// One row per request: e is NULL for the start row of an admitted request (err NULL) and for a
// request refused before the engine saw it (err set).
RunTicket Server::log_run(const Request& r, const EngineEvent* e, const Error* err) {
  RunRecord rec;
  rec.id = r.run_id;
  rec.started_unix_ms = r.started_unix_ms;
  rec.finished_unix_ms = unix_ms_now();
  rec.peer_uid = r.peer.uid;
  rec.peer_pid = r.peer.pid;
  rec.model = e && !e->model.empty() ? e->model : r.model;
  rec.decoder = r.decoder;
  rec.decoder_options = r.options;
  rec.via = r.via;
  rec.accepted_hist = "[]";
  rec.finish_reason = e || err ? "error" : "running";
  if (!e && !err) rec.finished_unix_ms = 0;
  if (e) {
    const UsageFigures u = usage_of(e->result, e->prompt_tokens);
    rec.prompt_tokens = u.prompt_tokens;
    rec.generated_tokens = u.generated_tokens;
    rec.forwards = u.forwards;
    rec.ttft_ms = u.ttft_ms;
    rec.decode_tok_s = u.decode_tok_s;
    rec.finish_reason = finish_reason_name(e->result.finish_reason);
    std::string hist = "[";
    for (size_t i = 0; i < e->result.emitted_hist.size(); ++i) {
      if (i) hist += ',';
      hist += std::to_string(e->result.emitted_hist[i]);
    }
    rec.accepted_hist = hist + "]";
    rec.auto_settings = settings_json(e->result);
  }
  if (err) rec.error = std::string(error_name(err->code)) + ": " + err->message;
  if (e || err) log_finished(rec, e ? e->result.tokens_per_forward() : 0.0);
  return runlog_.append(std::move(rec));
}

}  // namespace specd::daemon
