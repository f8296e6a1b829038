// specd_client.hpp: header-only C++20 wrapper over specd/client.h: RAII handles, string_view, std::function callbacks.
//
// Errors become specd::client::Error exceptions (code() is the SPECD_E_* code). Callbacks run
// inside Client::poll() and the blocking calls, on the calling thread; an exception thrown by a
// callback is caught before it reaches the C library and rethrown from the Client call that ran
// it. Generation::cancel() is safe from any thread at any time, also after the request ended.
#pragma once

#include <specd/client.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace specd::client {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }
  const char* name() const noexcept { return specd_err_name(code_); }

 private:
  int code_;
};

struct Options {
  std::string socket_path;  // empty: $SPECD_SOCKET, else SPECD_DEFAULT_SOCKET
  std::string client_name;
  int32_t timeout_ms = 0;   // 0: the library's default
  uint32_t max_frame_bytes = 0;
};

// One turn of a conversation (GenParams::messages).
struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// Unset optionals keep the library's defaults (specd_gen_params_init).
struct GenParams {
  std::string model;
  std::string prompt_text;
  std::vector<int32_t> prompt_ids;
  std::optional<int32_t> max_tokens;
  std::optional<float> temperature;
  std::optional<int32_t> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::string decoder;
  std::string decoder_options_json;
  bool stream = true;
  bool keep_stop = false;  // SPECD_GEN_KEEP_STOP
  // Non-empty: a conversation instead of a prompt, rendered by the daemon with the model's chat
  // template (plain text for a model without one; ModelStatus::chat_template says which).
  std::vector<ChatMessage> messages;
};

// Borrowed: valid during the on_token call only.
struct TokenEvent {
  std::span<const int32_t> ids;
  std::string_view text;
  uint32_t step = 0;
};

struct GenResult {
  int32_t finish_reason = 0;  // SPECD_FINISH_*
  std::string finish_reason_name;
  std::vector<int32_t> token_ids;
  std::string text;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t forwards = 0;
  double tokens_per_forward = 0.0;
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;
  int64_t run_id = 0;
  std::vector<int32_t> accepted_hist;
};

struct ModelStatus {
  std::string name;
  std::string path;
  int32_t vocab = 0;
  int32_t ctx_len = 0;
  uint64_t weight_bytes = 0;
  std::string device;                // "cpu", "cuda:0"; empty when the daemon does not say
  uint64_t device_memory_used = 0;   // bytes its backend holds
  uint64_t device_memory_total = 0;  // the device pool's size; 0 on the CPU
  // Since client 1.2; "" and 0 from an older library or daemon.
  std::string architecture;          // general.architecture
  uint64_t parameters = 0;           // elements of every tensor
  uint64_t file_bytes = 0;           // the GGUF file's size
  struct WeightType {
    std::string type;                // "F32", "Q4_K", ...
    uint64_t parameters = 0;
    uint64_t bytes = 0;
  };
  std::vector<WeightType> weight_types;  // largest share of bytes first
  bool chat_template = false;        // the model has tokenizer.chat_template
  bool is_default = false;           // a request naming no model runs on this one
  int32_t kv_blocks_total = 0;       // its own KV cache, in blocks
  int32_t kv_blocks_free = 0;        // held by no sequence
  int32_t kv_blocks_reserved = 0;    // promised to admitted requests
};

struct DecoderStatus {
  std::string name;
  std::string version;
  std::string description;
  std::string path;
  std::string details_json;  // options, lossless, files needed (client 1.2; "" from older daemons)
};

struct Status {
  std::string daemon_version;
  double uptime_s = 0.0;
  std::vector<ModelStatus> models;
  std::vector<DecoderStatus> decoders;
  int32_t active_requests = 0;
  int32_t queued_requests = 0;
  int32_t connections = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_free = 0;
  uint64_t kv_bytes_per_block = 0;
  int32_t kv_blocks_reserved = 0;    // client 1.2; 0 from an older library or daemon
};

struct RunsQuery {
  int32_t last = 20;
  std::string decoder;
  std::string model;
  int64_t since_unix_ms = 0;
};

struct Run {
  int64_t id = 0;
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  int32_t peer_uid = 0;
  int32_t peer_pid = 0;
  std::string model;
  std::string decoder;
  std::string decoder_options;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t forwards = 0;
  std::string accepted_hist;
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;
  std::string finish_reason;
  std::string error;
  std::string auto_settings;  // JSON object ("{}": none; "": an older daemon or library)
  std::string via;            // "socket" or "http" ("": an older daemon or library)
};

struct Runs {
  std::vector<Run> runs;
  uint64_t dropped_log_entries = 0;
};

using TokenFn = std::function<void(const TokenEvent&)>;
// rc is SPECD_OK or a SPECD_E_* code; result is set when the daemon finished the request.
using DoneFn = std::function<void(int rc, std::string_view message, const GenResult* result)>;

namespace detail {

// What outlives a Client move: where callback exceptions wait to be rethrown.
struct ClientState {
  std::exception_ptr pending;
};

// One request's callbacks and its C handle; owns itself (self) until its on_done has run.
struct GenState {
  std::mutex mu;
  specd_gen* gen = nullptr;  // null once on_done has started: cancel() then does nothing
  bool done = false;
  TokenFn on_token;
  DoneFn on_done;
  ClientState* client = nullptr;
  std::shared_ptr<GenState> self;
};

inline GenResult to_result(const specd_gen_result& r) {
  GenResult out;
  out.finish_reason = r.finish_reason;
  out.finish_reason_name = r.finish_reason_name;
  out.token_ids.assign(r.token_ids, r.token_ids + r.n_tokens);
  out.text.assign(r.text, r.text_len);
  out.prompt_tokens = r.prompt_tokens;
  out.generated_tokens = r.generated_tokens;
  out.forwards = r.forwards;
  out.tokens_per_forward = r.tokens_per_forward;
  out.ttft_ms = r.ttft_ms;
  out.decode_tok_s = r.decode_tok_s;
  out.run_id = r.run_id;
  out.accepted_hist.assign(r.accepted_hist, r.accepted_hist + r.n_accepted_hist);
  return out;
}

inline void on_token(specd_gen*, const specd_token_event* ev, void* user) {
  auto* st = static_cast<GenState*>(user);
  if (!st->on_token) return;
  try {
    st->on_token(TokenEvent{std::span<const int32_t>(ev->ids, ev->n_ids), std::string_view(ev->text, ev->text_len),
                            ev->step});
  } catch (...) {
    if (!st->client->pending) st->client->pending = std::current_exception();
  }
}

inline void on_done(specd_gen*, int rc, const char* message, const specd_gen_result* result, void* user) {
  auto* st = static_cast<GenState*>(user);
  std::shared_ptr<GenState> keep = std::move(st->self);  // the last callback: drop the self-reference on return
  {
    std::lock_guard<std::mutex> lock(st->mu);
    st->gen = nullptr;  // specd frees the handle when this returns
    st->done = true;
  }
  try {
    if (result) {
      const GenResult r = to_result(*result);
      st->on_done(rc, message, &r);
    } else {
      st->on_done(rc, message, nullptr);
    }
  } catch (...) {
    if (!st->client->pending) st->client->pending = std::current_exception();
  }
}

// The C string arrays a specd_gen_params points into.
struct CStrings {
  std::vector<const char*> stops, roles, contents;
};

// A specd_gen_params pointing into p (and into strs, which holds the arrays of string pointers).
inline specd_gen_params to_c(const GenParams& p, CStrings* strs) {
  std::vector<const char*>* stops = &strs->stops;
  specd_gen_params c;
  specd_gen_params_init(&c);
  c.model = p.model.c_str();
  c.prompt_text = p.prompt_text.c_str();
  c.prompt_ids = p.prompt_ids.data();
  c.n_prompt_ids = p.prompt_ids.size();
  if (p.max_tokens) c.max_tokens = *p.max_tokens;
  if (p.temperature) c.temperature = *p.temperature;
  if (p.top_k) c.top_k = *p.top_k;
  if (p.top_p) c.top_p = *p.top_p;
  if (p.min_p) c.min_p = *p.min_p;
  if (p.seed) c.seed = *p.seed;
  for (const std::string& s : p.stop) stops->push_back(s.c_str());
  c.stop = stops->data();
  c.n_stop = stops->size();
  c.decoder = p.decoder.c_str();
  c.decoder_options_json = p.decoder_options_json.c_str();
  c.flags = (p.stream ? SPECD_GEN_STREAM : 0u) | (p.keep_stop ? SPECD_GEN_KEEP_STOP : 0u);
  for (const ChatMessage& m : p.messages) {
    strs->roles.push_back(m.role.c_str());
    strs->contents.push_back(m.content.c_str());
  }
  c.message_roles = strs->roles.data();
  c.message_contents = strs->contents.data();
  c.n_messages = p.messages.size();
  return c;
}

}  // namespace detail

// A request's handle. Copies share the request. cancel() is safe from any thread, any time.
class Generation {
 public:
  Generation() = default;
  void cancel() const {
    if (!st_) return;
    std::lock_guard<std::mutex> lock(st_->mu);
    // Under the lock, on_done cannot start freeing the handle.
    if (st_->gen) specd_gen_cancel(st_->gen);
  }
  bool done() const {
    if (!st_) return true;
    std::lock_guard<std::mutex> lock(st_->mu);
    return st_->done;
  }

 private:
  friend class Client;
  explicit Generation(std::shared_ptr<detail::GenState> st) : st_(std::move(st)) {}
  std::shared_ptr<detail::GenState> st_;
};

class Client {
 public:
  // Connects (see specd_client_connect); throws Error.
  explicit Client(const Options& opts = {}) : state_(std::make_unique<detail::ClientState>()) {
    specd_client_opts o;
    specd_client_opts_init(&o);
    o.socket_path = opts.socket_path.c_str();
    o.client_name = opts.client_name.c_str();
    o.timeout_ms = opts.timeout_ms;
    o.max_frame_bytes = opts.max_frame_bytes;
    specd_error err;
    specd_error_init(&err);
    specd_client* c = nullptr;
    const int rc = specd_client_connect(&o, &c, &err);
    if (rc != SPECD_OK) throw Error(rc, err.message);
    c_.reset(c);
  }

  // Outstanding requests get on_done(SPECD_E_CANCELED) here; their exceptions are dropped.
  ~Client() = default;
  Client(Client&&) noexcept = default;
  Client& operator=(Client&& o) noexcept {
    if (this != &o) {
      c_.reset();  // close while the old state still takes the callbacks' exceptions
      state_ = std::move(o.state_);
      c_ = std::move(o.c_);
    }
    return *this;
  }

  specd_client* get() const noexcept { return c_.get(); }
  int fd() const noexcept { return specd_client_fd(c_.get()); }

  // Run the client's I/O and callbacks (see specd_client_poll); returns the callbacks run.
  // Throws Error when the connection is lost, or what a callback threw.
  int poll(int32_t timeout_ms) {
    const int rc = specd_client_poll(c_.get(), timeout_ms);
    rethrow_pending();
    if (rc < 0) throw Error(rc, specd_strerror(rc));
    return rc;
  }

  Generation generate(const GenParams& p, TokenFn on_token, DoneFn on_done) {
    auto st = std::make_shared<detail::GenState>();
    st->on_token = std::move(on_token);
    st->on_done = std::move(on_done);
    st->client = state_.get();
    detail::CStrings strs;
    const specd_gen_params c = detail::to_c(p, &strs);
    specd_error err;
    specd_error_init(&err);
    specd_gen* g = nullptr;
    st->self = st;  // before the start: callbacks only run in later polls, but keep it simple
    const int rc = specd_generate(c_.get(), &c, st->on_token ? detail::on_token : nullptr, detail::on_done, st.get(),
                                  &g, &err);
    if (rc != SPECD_OK) {
      st->self.reset();
      throw Error(rc, err.message);
    }
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->gen = g;
    }
    return Generation(std::move(st));
  }

  // Generate and wait (see specd_generate_sync); throws Error, including SPECD_E_CANCELED.
  GenResult generate_sync(const GenParams& p) {
    detail::CStrings strs;
    const specd_gen_params c = detail::to_c(p, &strs);
    specd_error err;
    specd_error_init(&err);
    specd_gen_result* r = nullptr;
    const int rc = specd_generate_sync(c_.get(), &c, &r, &err);
    std::unique_ptr<specd_gen_result, void (*)(specd_gen_result*)> owned(r, specd_gen_result_free);
    rethrow_pending();
    if (rc != SPECD_OK) throw Error(rc, err.message);
    return detail::to_result(*r);
  }

  Status status() {
    specd_error err;
    specd_error_init(&err);
    specd_status* s = nullptr;
    const int rc = specd_client_status(c_.get(), &s, &err);
    std::unique_ptr<specd_status, void (*)(specd_status*)> owned(s, specd_status_free);
    rethrow_pending();
    if (rc != SPECD_OK) throw Error(rc, err.message);
    Status out;
    out.daemon_version = s->daemon_version;
    out.uptime_s = s->uptime_s;
    for (size_t i = 0; i < s->n_models; ++i) {
      const specd_status_model& m = *s->models[i];
      ModelStatus ms;
      ms.name = m.name;
      ms.path = m.path;
      ms.vocab = m.vocab;
      ms.ctx_len = m.ctx_len;
      ms.weight_bytes = m.weight_bytes;
      if (SPECD_HAS(specd_status_model, &m, device_memory_total)) {
        ms.device = m.device ? m.device : "";
        ms.device_memory_used = m.device_memory_used;
        ms.device_memory_total = m.device_memory_total;
      }
      if (SPECD_HAS(specd_status_model, &m, flags)) {
        ms.architecture = m.architecture ? m.architecture : "";
        ms.parameters = m.parameters;
        ms.file_bytes = m.file_bytes;
        for (size_t k = 0; k < m.n_weight_types; ++k) {
          const specd_status_weight_type& t = *m.weight_types[k];
          ms.weight_types.push_back(ModelStatus::WeightType{t.type, t.parameters, t.bytes});
        }
        ms.chat_template = (m.flags & SPECD_MODEL_CHAT_TEMPLATE) != 0;
        ms.is_default = (m.flags & SPECD_MODEL_DEFAULT) != 0;
      }
      if (SPECD_HAS(specd_status_model, &m, kv_blocks_reserved)) {
        ms.kv_blocks_total = m.kv_blocks_total;
        ms.kv_blocks_free = m.kv_blocks_free;
        ms.kv_blocks_reserved = m.kv_blocks_reserved;
      }
      out.models.push_back(std::move(ms));
    }
    for (size_t i = 0; i < s->n_decoders; ++i) {
      const specd_status_decoder& d = *s->decoders[i];
      out.decoders.push_back(DecoderStatus{d.name, d.version, d.description, d.path,
                                           SPECD_HAS(specd_status_decoder, &d, details_json) ? d.details_json : ""});
    }
    out.active_requests = s->active_requests;
    out.queued_requests = s->queued_requests;
    out.connections = s->connections;
    out.kv_blocks_total = s->kv_blocks_total;
    out.kv_blocks_free = s->kv_blocks_free;
    out.kv_bytes_per_block = s->kv_bytes_per_block;
    if (SPECD_HAS(specd_status, s, kv_blocks_reserved)) out.kv_blocks_reserved = s->kv_blocks_reserved;
    return out;
  }

  Runs list_runs(const RunsQuery& q = {}) {
    specd_runs_query cq;
    specd_runs_query_init(&cq);
    cq.last = q.last;
    cq.decoder = q.decoder.c_str();
    cq.model = q.model.c_str();
    cq.since_unix_ms = q.since_unix_ms;
    specd_error err;
    specd_error_init(&err);
    specd_runs* r = nullptr;
    const int rc = specd_client_list_runs(c_.get(), &cq, &r, &err);
    std::unique_ptr<specd_runs, void (*)(specd_runs*)> owned(r, specd_runs_free);
    rethrow_pending();
    if (rc != SPECD_OK) throw Error(rc, err.message);
    Runs out;
    out.dropped_log_entries = r->dropped_log_entries;
    for (size_t i = 0; i < r->n_runs; ++i) {
      const specd_run& x = *r->runs[i];
      out.runs.push_back(Run{x.id, x.started_unix_ms, x.finished_unix_ms, x.peer_uid, x.peer_pid, x.model, x.decoder,
                             x.decoder_options, x.prompt_tokens, x.generated_tokens, x.forwards, x.accepted_hist,
                             x.ttft_ms, x.decode_tok_s, x.finish_reason, x.error,
                             SPECD_HAS(specd_run, &x, auto_settings) ? x.auto_settings : "",
                             SPECD_HAS(specd_run, &x, via) ? x.via : ""});
    }
    return out;
  }

 private:
  struct Closer {
    void operator()(specd_client* c) const noexcept { specd_client_close(c); }
  };

  void rethrow_pending() {
    if (state_ && state_->pending) std::rethrow_exception(std::exchange(state_->pending, nullptr));
  }

  // Declared first so it is destroyed last: closing runs on_done, which may record exceptions.
  std::unique_ptr<detail::ClientState> state_;
  std::unique_ptr<specd_client, Closer> c_;
};

}  // namespace specd::client
