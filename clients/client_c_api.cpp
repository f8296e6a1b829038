// The ABI edge of libspecd-client: specd/client.h's C functions over Session, converting C structs and errors.
#include <specd/client.h>

#include "clients/default_paths.h"
#include "clients/error_text.h"
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

namespace {

// Results handed to C live in "boxes": a standard-layout struct whose first member is the public
// struct and whose other members own what its pointers point at. The public pointer converts back
// to its box (they are pointer-interconvertible), so *_free needs no lookup and no global table.
// Pointers are set by link() once the box is in its final place; a box is never moved after.
constexpr int32_t kNoIds[1] = {0};  // what an empty id array points at: the API promises non-NULL

struct GenResultBox {
  specd_gen_result pub;
  std::vector<int32_t> ids;
  std::string text;
  std::string reason;
  std::vector<int32_t> hist;
};

struct WeightTypeBox {
  specd_status_weight_type pub;
  std::string type;
};

struct ModelBox {
  specd_status_model pub;
  std::string name;
  std::string path;
  std::string device;
  std::string architecture;
  std::vector<WeightTypeBox> types;
  std::vector<const specd_status_weight_type*> type_ptrs;
};

struct DecoderBox {
  specd_status_decoder pub;
  std::string name;
  std::string version;
  std::string description;
  std::string path;
  std::string details_json;
};

struct StatusBox {
  specd_status pub;
  std::string daemon_version;
  std::vector<ModelBox> models;
  std::vector<const specd_status_model*> model_ptrs;
  std::vector<DecoderBox> decoders;
  std::vector<const specd_status_decoder*> decoder_ptrs;
};

struct RunBox {
  specd_run pub;
  sc::RunRecord rec;
};

struct RunsBox {
  specd_runs pub;
  std::vector<RunBox> runs;
  std::vector<const specd_run*> run_ptrs;
};

template <class Box>
constexpr bool kBoxLayoutOk = std::is_standard_layout_v<Box> && offsetof(Box, pub) == 0;
static_assert(kBoxLayoutOk<GenResultBox> && kBoxLayoutOk<StatusBox> && kBoxLayoutOk<RunsBox> &&
                  kBoxLayoutOk<ModelBox> && kBoxLayoutOk<DecoderBox> && kBoxLayoutOk<RunBox> &&
                  kBoxLayoutOk<WeightTypeBox>,
              "a box must convert to and from its public struct");

int32_t finish_reason_code(const std::string& reason) {
  if (reason == "length") return SPECD_FINISH_LENGTH;
  if (reason == "stop") return SPECD_FINISH_STOP;
  if (reason == "decoder") return SPECD_FINISH_DECODER;
  if (reason == "context") return SPECD_FINISH_CONTEXT;
  if (reason == "cancel") return SPECD_FINISH_CANCEL;
  if (reason == "error") return SPECD_FINISH_ERROR;
  return 0;
}

const int32_t* ids_or_empty(const std::vector<int32_t>& v) { return v.empty() ? kNoIds : v.data(); }

void fill_gen_result(GenResultBox* b, const sc::Finished& f) {
  b->ids = f.token_ids;
  b->text = f.text;
  b->reason = f.reason;
  b->hist = f.usage.accepted_hist;
  specd_gen_result& r = b->pub;
  r = specd_gen_result{};
  r.struct_size = sizeof r;
  r.finish_reason = finish_reason_code(b->reason);
  r.finish_reason_name = b->reason.c_str();
  r.token_ids = ids_or_empty(b->ids);
  r.n_tokens = b->ids.size();
  r.text = b->text.c_str();
  r.text_len = b->text.size();
  r.prompt_tokens = f.usage.prompt_tokens;
  r.generated_tokens = f.usage.generated_tokens;
  r.forwards = f.usage.forwards;
  r.tokens_per_forward = f.usage.tokens_per_forward;
  r.ttft_ms = f.usage.ttft_ms;
  r.decode_tok_s = f.usage.decode_tok_s;
  r.run_id = f.run_id;
  r.accepted_hist = ids_or_empty(b->hist);
  r.n_accepted_hist = b->hist.size();
}

// The 1.2 fields of a model: architecture, parameters, file size, weight types, flags, KV blocks.
void link_model_summary(ModelBox* m, sc::ModelInfo info) {
  m->architecture = std::move(info.architecture);
  m->pub.architecture = m->architecture.c_str();
  m->pub.parameters = info.parameters;
  m->pub.file_bytes = info.file_bytes;
  m->types = std::vector<WeightTypeBox>(info.weight_types.size());
  for (size_t i = 0; i < info.weight_types.size(); ++i) {
    WeightTypeBox& t = m->types[i];
    t.type = std::move(info.weight_types[i].type);
    t.pub = specd_status_weight_type{sizeof(specd_status_weight_type), t.type.c_str(), info.weight_types[i].parameters,
                                     info.weight_types[i].bytes};
    m->type_ptrs.push_back(&t.pub);
  }
  m->pub.weight_types = m->type_ptrs.data();
  m->pub.n_weight_types = m->type_ptrs.size();
  m->pub.flags = (info.chat_template ? SPECD_MODEL_CHAT_TEMPLATE : 0u) | (info.is_default ? SPECD_MODEL_DEFAULT : 0u);
  m->pub.kv_blocks_total = info.kv_blocks_total;
  m->pub.kv_blocks_free = info.kv_blocks_free;
  m->pub.kv_blocks_reserved = info.kv_blocks_reserved;
}

specd_status* make_status(sc::StatusInfo info) {
  auto box = std::make_unique<StatusBox>();
  box->daemon_version = std::move(info.daemon_version);
  box->models = std::vector<ModelBox>(info.models.size());
  for (size_t i = 0; i < info.models.size(); ++i) {
    ModelBox& m = box->models[i];
    m.name = std::move(info.models[i].name);
    m.path = std::move(info.models[i].path);
    m.device = std::move(info.models[i].device);
    m.pub = specd_status_model{};
    m.pub.struct_size = sizeof m.pub;
    m.pub.vocab = info.models[i].vocab;
    m.pub.name = m.name.c_str();
    m.pub.path = m.path.c_str();
    m.pub.ctx_len = info.models[i].ctx_len;
    m.pub.weight_bytes = info.models[i].weight_bytes;
    m.pub.device = m.device.c_str();
    m.pub.device_memory_used = info.models[i].device_memory_used;
    m.pub.device_memory_total = info.models[i].device_memory_total;
    link_model_summary(&m, std::move(info.models[i]));
    box->model_ptrs.push_back(&m.pub);
  }
  box->decoders = std::vector<DecoderBox>(info.decoders.size());
  for (size_t i = 0; i < info.decoders.size(); ++i) {
    DecoderBox& d = box->decoders[i];
    d.name = std::move(info.decoders[i].name);
    d.version = std::move(info.decoders[i].version);
    d.description = std::move(info.decoders[i].description);
    d.path = std::move(info.decoders[i].path);
    d.details_json = std::move(info.decoders[i].details_json);
    d.pub = specd_status_decoder{sizeof(specd_status_decoder), d.name.c_str(), d.version.c_str(),
                                 d.description.c_str(), d.path.c_str(), d.details_json.c_str()};
    box->decoder_ptrs.push_back(&d.pub);
  }
  specd_status& s = box->pub;
  s = specd_status{};
  s.struct_size = sizeof s;
  s.active_requests = info.active_requests;
  s.daemon_version = box->daemon_version.c_str();
  s.uptime_s = info.uptime_s;
  s.models = box->model_ptrs.data();
  s.n_models = box->model_ptrs.size();
  s.decoders = box->decoder_ptrs.data();
  s.n_decoders = box->decoder_ptrs.size();
  s.queued_requests = info.queued_requests;
  s.connections = info.connections;
  s.kv_blocks_total = info.kv_blocks_total;
  s.kv_blocks_free = info.kv_blocks_free;
  s.kv_bytes_per_block = info.kv_bytes_per_block;
  s.kv_blocks_reserved = info.kv_blocks_reserved;
  return &box.release()->pub;
}

void link_run(RunBox* b) {
  const sc::RunRecord& r = b->rec;
  specd_run& p = b->pub;
  p = specd_run{};
  p.struct_size = sizeof p;
  p.peer_uid = r.peer_uid;
  p.id = r.id;
  p.started_unix_ms = r.started_unix_ms;
  p.finished_unix_ms = r.finished_unix_ms;
  p.peer_pid = r.peer_pid;
  p.prompt_tokens = r.prompt_tokens;
  p.model = r.model.c_str();
  p.decoder = r.decoder.c_str();
  p.decoder_options = r.decoder_options.c_str();
  p.generated_tokens = r.generated_tokens;
  p.forwards = r.forwards;
  p.accepted_hist = r.accepted_hist.c_str();
  p.ttft_ms = r.ttft_ms;
  p.decode_tok_s = r.decode_tok_s;
  p.finish_reason = r.finish_reason.c_str();
  p.error = r.error.c_str();
  p.auto_settings = r.auto_settings.c_str();
  p.via = r.via.c_str();
}

specd_runs* make_runs(sc::RunList list) {
  auto box = std::make_unique<RunsBox>();
  box->runs = std::vector<RunBox>(list.runs.size());
  for (size_t i = 0; i < list.runs.size(); ++i) {
    box->runs[i].rec = std::move(list.runs[i]);
    link_run(&box->runs[i]);
    box->run_ptrs.push_back(&box->runs[i].pub);
  }
  specd_runs& r = box->pub;
  r = specd_runs{};
  r.struct_size = sizeof r;
  r.runs = box->run_ptrs.data();
  r.n_runs = box->run_ptrs.size();
  r.dropped_log_entries = list.dropped_log_entries;
  return &box.release()->pub;
}

// Back from a public pointer to the box that owns it, and destroy the box (NULL is ignored).
template <class Box, class Pub>
void destroy_box(Pub* p) {
  std::unique_ptr<Box> owned(reinterpret_cast<Box*>(p));
}

}  // namespace

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
    e.ids = ev.ids.empty() ? kNoIds : ev.ids.data();
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
    GenResultBox box;
    bool copied = true;
    try {
      if (result) fill_gen_result(&box, *result);
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
    auto box = std::make_unique<GenResultBox>();
    fill_gen_result(box.get(), f.value());
    *out = &box.release()->pub;
    return SPECD_OK;
  });
  finish_call(c);
  return rc;
}

void specd_gen_result_free(specd_gen_result* r) { destroy_box<GenResultBox>(r); }

int specd_client_status(specd_client* c, specd_status** out, specd_error* err) {
  if (!out) return report(err, Error{SPECD_E_INVALID_ARG, "out is NULL"});
  *out = nullptr;
  if (!c) return report(err, Error{SPECD_E_INVALID_ARG, "client is NULL"});
  const int rc = guarded(err, [&] {
    auto s = c->session->status();
    if (!s) return report(err, s.error());
    *out = make_status(std::move(s.value()));
    return SPECD_OK;
  });
  finish_call(c);
  return rc;
}

void specd_status_free(specd_status* s) { destroy_box<StatusBox>(s); }

int specd_client_list_runs(specd_client* c, const specd_runs_query* q, specd_runs** out, specd_error* err) {
  if (!out) return report(err, Error{SPECD_E_INVALID_ARG, "out is NULL"});
  *out = nullptr;
  if (!c) return report(err, Error{SPECD_E_INVALID_ARG, "client is NULL"});
  const int rc = guarded(err, [&] {
    auto r = c->session->list_runs(runs_query(q));
    if (!r) return report(err, r.error());
    *out = make_runs(std::move(r.value()));
    return SPECD_OK;
  });
  finish_call(c);
  return rc;
}

void specd_runs_free(specd_runs* r) { destroy_box<RunsBox>(r); }

}  // extern "C"
