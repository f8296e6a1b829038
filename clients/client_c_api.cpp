// The ABI edge of libspecd-client: specd/client.h's C functions over Session, converting C structs and errors.
#include <specd/client.h>

#include "clients/default_paths.h"
#include "clients/error_text.h"
#include "clients/client_c_results.h"
#include "clients/session.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

using specd::Error;
using specd::Result;
namespace sc = specd::clients;

#define SPECD_STRINGIFY_(x) #x
#define SPECD_STRINGIFY(x) SPECD_STRINGIFY_(x)
// The Hello name of a client that gives none: the library and the version it was built as.
constexpr const char* kDefaultClientName = "libspecd-client " SPECD_STRINGIFY(SPECD_CLIENT_VERSION_MAJOR) "." SPECD_STRINGIFY(
    SPECD_CLIENT_VERSION_MINOR) "." SPECD_STRINGIFY(SPECD_CLIENT_VERSION_PATCH);

// The opaque handles. C sees only their names; the library allocates and frees them.
struct specd_client {
  std::unique_ptr<sc::Session> session;
  bool close_deferred = false;  // specd_client_close was called inside a callback
};

struct specd_gen final : sc::Generation {
  specd_gen_token_cb token_cb = nullptr;
  specd_gen_done_cb done_cb = nullptr;
  void* user = nullptr;

  void on_token(const sc::TokenEventView& ev) override {
    if (!token_cb) return;
    specd_token_event e{};
    e.struct_size = sizeof e;
    e.step = ev.step;
    e.ids = ev.ids.empty() ? sc::kNoIds : ev.ids.data();
    e.n_ids = ev.ids.size();
    e.text = ev.text.data() ? ev.text.data() : "";
    e.text_len = ev.text.size();
    // An exception must not unwind into the session's loop (nor, from C++ callers, through C frames).
    try {
      token_cb(this, &e, user);
    } catch (...) {
      // Dropped: the C++ wrapper catches and rethrows its callbacks' exceptions itself.
    }
  }

  void on_done(int rc, const std::string& message, const sc::Finished* result) override {
    sc::GenResultBox box;
    bool copied = true;
    try {
      if (result) sc::fill_gen_result(&box, *result);
    } catch (const std::bad_alloc&) {
      copied = false;  // the request still ends exactly once, without its result
    }
    try {
      if (copied) {
        done_cb(this, rc, message.c_str(), result ? &box.pub : nullptr, user);
      } else {
        done_cb(this, SPECD_E_NOMEM, "out of memory copying the generation's result", nullptr, user);
      }
    } catch (...) {
      // Dropped, as in on_token: the request has ended either way.
    }
  }
};

namespace {

void set_error(specd_error* err, int code, const std::string& message) {
  if (!err || err->struct_size < sizeof(uint32_t)) return;
  if (SPECD_HAS(specd_error, err, code)) err->code = code;
  if (SPECD_HAS(specd_error, err, message)) {
    const size_t n = std::min(message.size(), sizeof err->message - 1);
    std::memcpy(err->message, message.data(), n);
    err->message[n] = '\0';
  }
}

int report(specd_error* err, const Error& e) {
  set_error(err, e.code, e.message.empty() ? sc::error_message(e.code) : e.message);
  return e.code;
}

// Runs f, turning exceptions into codes: nothing thrown inside the library reaches a C caller.
template <class F>
int guarded(specd_error* err, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return report(err, Error{SPECD_E_NOMEM, "out of memory"});
  } catch (const std::exception& e) {
    return report(err, Error{SPECD_E_INTERNAL, std::string("client library error: ") + e.what()});
  } catch (...) {
    return report(err, Error{SPECD_E_INTERNAL, "client library error"});
  }
}

// Copy the fields a caller's struct covers from a default-filled struct of this build; bytes of
// a newer caller's struct beyond this build's fields are zeroed.
template <class T>
void init_sized(T* p, size_t struct_size, T defaults) {
  if (!p || struct_size < sizeof(uint32_t)) return;
  defaults.struct_size = static_cast<uint32_t>(struct_size);
  std::memcpy(p, &defaults, std::min(struct_size, sizeof(T)));
  if (struct_size > sizeof(T)) std::memset(reinterpret_cast<char*>(p) + sizeof(T), 0, struct_size - sizeof(T));
}

// A field of a caller's struct, or def when its struct_size does not cover the field.
#define FIELD_OR(T, p, f, def) (SPECD_HAS(T, p, f) ? (p)->f : (def))

std::string str_or_empty(const char* s) { return s ? std::string(s) : std::string(); }

Result<sc::SessionOptions> session_options(const specd_client_opts* o) {
  specd_client_opts d;
  specd_client_opts_init(&d);
  if (!o) o = &d;
  if (o->struct_size < sizeof(uint32_t))
    return Error{SPECD_E_INVALID_ARG, "specd_client_opts.struct_size is 0: initialise it with specd_client_opts_init"};
  sc::SessionOptions s;
  s.socket_path = str_or_empty(FIELD_OR(specd_client_opts, o, socket_path, nullptr));
  if (s.socket_path.empty()) {
    const char* env = std::getenv("SPECD_SOCKET");
    s.socket_path = env && *env ? env : specd::client_default_socket(specd::PathEnv::from_environment());
  }
  s.client_name = str_or_empty(FIELD_OR(specd_client_opts, o, client_name, nullptr));
  if (s.client_name.empty()) s.client_name = kDefaultClientName;
  const int32_t timeout = FIELD_OR(specd_client_opts, o, timeout_ms, 0);
  s.timeout_ms = timeout == 0 ? 10000 : (timeout < 0 ? -1 : timeout);
  const uint32_t max_frame = FIELD_OR(specd_client_opts, o, max_frame_bytes, 0u);
  if (max_frame != 0) s.max_frame_bytes = max_frame;
  return s;
}

// A default socket that is not there: say every place looked at, since the user's own daemon and
// the system service listen in different ones (clients/default_paths.h).
Error with_places_tried(const specd_client_opts* o, Error e) {
  const char* given = o ? FIELD_OR(specd_client_opts, o, socket_path, nullptr) : nullptr;
  const char* env = std::getenv("SPECD_SOCKET");
  if ((given && *given) || (env && *env) || e.message.rfind("daemon not running", 0) != 0) return e;
  std::string places;
  for (const std::string& p : specd::client_socket_candidates(specd::PathEnv::from_environment()))
    places += (places.empty() ? "" : ", ") + p;
  e.message = "daemon not running (no socket at " + places + "; set $SPECD_SOCKET or --socket for another)";
  return e;
}

Result<sc::GenerateRequest> generate_request(const specd_gen_params* p) {
  if (!p) return Error{SPECD_E_INVALID_ARG, "params is NULL"};
  if (p->struct_size < sizeof(uint32_t))
    return Error{SPECD_E_INVALID_ARG, "specd_gen_params.struct_size is 0: initialise it with specd_gen_params_init"};
  specd_gen_params d;
  specd_gen_params_init(&d);
  sc::GenerateRequest r;
  r.model = str_or_empty(FIELD_OR(specd_gen_params, p, model, nullptr));
  r.prompt_text = str_or_empty(FIELD_OR(specd_gen_params, p, prompt_text, nullptr));
  const int32_t* ids = FIELD_OR(specd_gen_params, p, prompt_ids, nullptr);
  const size_t n_ids = FIELD_OR(specd_gen_params, p, n_prompt_ids, size_t{0});
  if (n_ids > 0 && !ids) {
    return Error{SPECD_E_INVALID_ARG, "prompt_ids is NULL but n_prompt_ids is " + std::to_string(n_ids)};
  }
  if (n_ids > 0) r.prompt_ids.assign(ids, ids + n_ids);
  r.max_tokens = FIELD_OR(specd_gen_params, p, max_tokens, d.max_tokens);
  r.sampling.temperature = FIELD_OR(specd_gen_params, p, temperature, d.temperature);
  r.sampling.top_k = FIELD_OR(specd_gen_params, p, top_k, d.top_k);
  r.sampling.top_p = FIELD_OR(specd_gen_params, p, top_p, d.top_p);
  r.sampling.min_p = FIELD_OR(specd_gen_params, p, min_p, d.min_p);
  r.sampling.seed = FIELD_OR(specd_gen_params, p, seed, d.seed);
  const char* const* stop = FIELD_OR(specd_gen_params, p, stop, nullptr);
  const size_t n_stop = FIELD_OR(specd_gen_params, p, n_stop, size_t{0});
  if (n_stop > 0 && !stop) return Error{SPECD_E_INVALID_ARG, "stop is NULL but n_stop is " + std::to_string(n_stop)};
  for (size_t i = 0; i < n_stop; ++i) {
    if (!stop[i]) return Error{SPECD_E_INVALID_ARG, "stop[" + std::to_string(i) + "] is NULL"};
    r.stop_strings.emplace_back(stop[i]);
  }
  r.decoder = str_or_empty(FIELD_OR(specd_gen_params, p, decoder, nullptr));
  r.decoder_options_json = str_or_empty(FIELD_OR(specd_gen_params, p, decoder_options_json, nullptr));
  const uint32_t flags = FIELD_OR(specd_gen_params, p, flags, d.flags);
  r.stream = (flags & SPECD_GEN_STREAM) != 0;
  r.keep_stop = (flags & SPECD_GEN_KEEP_STOP) != 0;
  const char* const* roles = FIELD_OR(specd_gen_params, p, message_roles, nullptr);
  const char* const* contents = FIELD_OR(specd_gen_params, p, message_contents, nullptr);
  const size_t n_messages = FIELD_OR(specd_gen_params, p, n_messages, size_t{0});
  if (n_messages > 0 && (!roles || !contents))
    return Error{SPECD_E_INVALID_ARG, "message_roles or message_contents is NULL but n_messages is " + std::to_string(n_messages)};
  for (size_t i = 0; i < n_messages; ++i) {
    if (!roles[i] || !contents[i])
      return Error{SPECD_E_INVALID_ARG, "message " + std::to_string(i) + " has a NULL role or content"};
    r.messages.push_back(sc::ChatMessage{roles[i], contents[i]});
  }
  return r;
}

sc::RunsQuery runs_query(const specd_runs_query* q) {
  sc::RunsQuery r;
  if (!q || q->struct_size < sizeof(uint32_t)) return r;
  r.last = FIELD_OR(specd_runs_query, q, last, r.last);
  r.decoder = str_or_empty(FIELD_OR(specd_runs_query, q, decoder, nullptr));
  r.model = str_or_empty(FIELD_OR(specd_runs_query, q, model, nullptr));
  r.since_unix_ms = FIELD_OR(specd_runs_query, q, since_unix_ms, r.since_unix_ms);
  return r;
}

// After a call that ran callbacks: a close asked for inside one of them happens now.
void finish_call(specd_client* c) {
  if (c->close_deferred && !c->session->in_callback()) std::unique_ptr<specd_client> owned(c);
}

}  // namespace

extern "C" {

uint32_t specd_client_version_number(void) { return SPECD_CLIENT_VERSION_NUMBER; }

const char* specd_strerror(int rc) { return sc::error_message(rc); }

const char* specd_err_name(int rc) { return sc::error_name(rc); }

void specd_client_opts_init_sized(specd_client_opts* o, size_t struct_size) {
  specd_client_opts d{};
  d.timeout_ms = 0;
  d.socket_path = nullptr;
  d.client_name = nullptr;
  d.max_frame_bytes = 0;
  init_sized(o, struct_size, d);
}

void specd_gen_params_init_sized(specd_gen_params* p, size_t struct_size) {
  specd_gen_params d{};
  d.max_tokens = 128;
  d.temperature = 0.0f;
  d.top_k = 0;
  d.top_p = 1.0f;
  d.min_p = 0.0f;
  d.seed = 0;
  d.flags = SPECD_GEN_STREAM;
  init_sized(p, struct_size, d);
}

void specd_runs_query_init_sized(specd_runs_query* q, size_t struct_size) {
  specd_runs_query d{};
  d.last = 20;
  d.since_unix_ms = 0;
  init_sized(q, struct_size, d);
}

int specd_client_connect(const specd_client_opts* opts, specd_client** out, specd_error* err) {
  if (!out) return report(err, Error{SPECD_E_INVALID_ARG, "out is NULL"});
  *out = nullptr;
  return guarded(err, [&] {
    auto o = session_options(opts);
    if (!o) return report(err, o.error());
    auto s = sc::Session::connect(o.value());
    if (!s) return report(err, with_places_tried(opts, s.error()));
    auto c = std::make_unique<specd_client>();
    c->session = std::move(s.value());
    *out = c.release();
    return SPECD_OK;
  });
}

void specd_client_close(specd_client* c) {
  if (!c) return;
  if (c->session->in_callback()) {
    c->close_deferred = true;
    return;
  }
  try {
    std::unique_ptr<specd_client> owned(c);
    owned->session->close();
  } catch (...) {
    // close() only runs callbacks, which catch their own exceptions; nothing else to report.
  }
}

int specd_client_fd(const specd_client* c) { return c ? c->session->event_fd() : -1; }

int specd_client_poll(specd_client* c, int32_t timeout_ms) {
  if (!c) return SPECD_E_INVALID_ARG;
  const int rc = guarded(nullptr, [&] {
    auto r = c->session->poll(timeout_ms);
    return r ? r.value() : r.error().code;
  });
  finish_call(c);
  return rc;
}

int specd_generate(specd_client* c, const specd_gen_params* params, specd_gen_token_cb on_token,
                   specd_gen_done_cb on_done, void* user, specd_gen** out, specd_error* err) {
  if (out) *out = nullptr;
  if (!c) return report(err, Error{SPECD_E_INVALID_ARG, "client is NULL"});
  if (!on_done) return report(err, Error{SPECD_E_INVALID_ARG, "on_done is NULL"});
  return guarded(err, [&] {
    auto req = generate_request(params);
    if (!req) return report(err, req.error());
    auto g = std::make_unique<specd_gen>();
    g->token_cb = on_token;
    g->done_cb = on_done;
    g->user = user;
    specd_gen* handle = g.get();
    auto started = c->session->start(std::move(g), req.value());
    if (!started) return report(err, started.error());
    if (out) *out = handle;
    return SPECD_OK;
  });
}

int specd_gen_cancel(specd_gen* g) {
  if (!g) return SPECD_E_INVALID_ARG;
  g->request_cancel();
  return SPECD_OK;
}

int specd_generate_sync(specd_client* c, const specd_gen_params* params, specd_gen_result** out, specd_error* err) {
  if (!out) return report(err, Error{SPECD_E_INVALID_ARG, "out is NULL"});
  *out = nullptr;
  if (!c) return report(err, Error{SPECD_E_INVALID_ARG, "client is NULL"});
  const int rc = guarded(err, [&] {
    auto req = generate_request(params);
    if (!req) return report(err, req.error());
    req->stream = false;  // nobody reads the token events
    auto f = c->session->generate(req.value());
    if (!f) return report(err, f.error());
    auto box = std::make_unique<sc::GenResultBox>();
    sc::fill_gen_result(box.get(), f.value());
    *out = &box.release()->pub;
    return SPECD_OK;
  });
  finish_call(c);
  return rc;
}

void specd_gen_result_free(specd_gen_result* r) { sc::free_gen_result(r); }

int specd_client_status(specd_client* c, specd_status** out, specd_error* err) {
  if (!out) return report(err, Error{SPECD_E_INVALID_ARG, "out is NULL"});
  *out = nullptr;
  if (!c) return report(err, Error{SPECD_E_INVALID_ARG, "client is NULL"});
  const int rc = guarded(err, [&] {
    auto s = c->session->status();
    if (!s) return report(err, s.error());
    *out = sc::make_status(std::move(s.value()));
    return SPECD_OK;
  });
  finish_call(c);
  return rc;
}

void specd_status_free(specd_status* s) { sc::free_status(s); }

int specd_client_list_runs(specd_client* c, const specd_runs_query* q, specd_runs** out, specd_error* err) {
  if (!out) return report(err, Error{SPECD_E_INVALID_ARG, "out is NULL"});
  *out = nullptr;
  if (!c) return report(err, Error{SPECD_E_INVALID_ARG, "client is NULL"});
  const int rc = guarded(err, [&] {
    auto r = c->session->list_runs(runs_query(q));
    if (!r) return report(err, r.error());
    *out = sc::make_runs(std::move(r.value()));
    return SPECD_OK;
  });
  finish_call(c);
  return rc;
}

void specd_runs_free(specd_runs* r) { sc::free_runs(r); }

}  // extern "C"
