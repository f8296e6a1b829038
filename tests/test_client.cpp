// Tests of libspecd-client, its C++ wrapper and specctl against an in-process fake daemon speaking protocol.fbs.
#include <doctest/doctest.h>
#include <specd/client.h>

#include "clients/specd_client.hpp"
#include "protocol_generated.h"
#include "tests/test_support.h"

#include <dlfcn.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace specd::test;
namespace wire = specd::wire;

namespace {

// ---------------------------------------------------------------------------------------------
// The fake daemon: one thread, a listening socket in a temp dir, the real schema. What a
// Generate does is chosen by its prompt_text ("hang", "drop", "garbage", ...; see step()).

// refuse: at accept, an Error for request 0 and close, without reading (a daemon refusing access).
enum class HelloReply { welcome, error, garbage, silent, hangup, refuse };

// The client library's send(2) resolves to this definition (the executable's symbols come first):
// a test sets g_delay_next_send_ms on its own thread to hold back the next send, so a daemon that
// refuses at accept has surely closed the connection before the Hello goes out (EPIPE).
thread_local int g_delay_next_send_ms = 0;

}  // namespace

extern "C" ssize_t send(int fd, const void* buf, size_t n, int flags) {
  using SendFn = ssize_t (*)(int, const void*, size_t, int);
  static const auto real = reinterpret_cast<SendFn>(::dlsym(RTLD_NEXT, "send"));
  if (g_delay_next_send_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(g_delay_next_send_ms));
    g_delay_next_send_ms = 0;
  }
  return real(fd, buf, n, flags);
}

namespace {

struct FakeConfig {
  HelloReply hello = HelloReply::welcome;
  uint32_t protocol_version = 1;
  uint32_t max_frame_bytes = 1u << 20;
  bool answer_status = true;
};

struct SeenGenerate {
  uint64_t id = 0;
  std::string model, prompt_text, decoder, options;
  std::vector<int32_t> prompt_ids;
  std::vector<std::string> stop;
  int32_t max_tokens = 0;
  float temperature = 0, top_p = 0, min_p = 0;
  int32_t top_k = 0;
  uint64_t seed = 0;
  bool stream = false;
};

struct SeenRunsQuery {
  int32_t last = 0;
  std::string decoder, model;
  int64_t since_unix_ms = 0;
};

// What the fake daemon received, for tests to check the client's encoding.
struct Seen {
  std::string client_name;
  uint32_t hello_version = 0;
  std::vector<SeenGenerate> generates;
  std::vector<uint64_t> cancels;
  std::vector<SeenRunsQuery> runs_queries;
  int status_requests = 0;
  int bad_frames = 0;
};

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

class FakeDaemon {
 public:
  explicit FakeDaemon(FakeConfig cfg = {}) : cfg_(cfg), path_(temp_dir() + "/specd.sock") {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    REQUIRE(::pipe2(stop_, O_CLOEXEC) == 0);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeDaemon() {
    [[maybe_unused]] const ssize_t n = ::write(stop_[1], "x", 1);
    thread_.join();
    for (auto& c : conns_) ::close(c.fd);
    ::close(listen_fd_);
    ::close(stop_[0]);
    ::close(stop_[1]);
  }
  FakeDaemon(const FakeDaemon&) = delete;
  FakeDaemon& operator=(const FakeDaemon&) = delete;

  const std::string& path() const { return path_; }
  Seen seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // Wait (up to 5 s) until pred holds for what the daemon saw.
  bool wait_for(const std::function<bool(const Seen&)>& pred) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end) {
      if (pred(seen())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

 private:
  struct Gen {
    uint64_t id = 0;
    std::string mode;
    int32_t max_tokens = 0;
    int32_t base = 100;
    size_t prompt_tokens = 0;
    std::vector<std::string> stop;
    bool stream = true;
    bool cancel = false;
    std::vector<int32_t> ids;
    std::string text;
  };
  struct Conn {
    int fd = -1;
    std::vector<uint8_t> in;
    std::vector<Gen> gens;
    bool dead = false;
    int pairs = 0;  // "pair" requests seen
  };

  void run() {
    auto last_step = std::chrono::steady_clock::now();
    for (;;) {
      std::vector<pollfd> fds = {{stop_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 1);
      if (fds[0].revents) return;
      if (fds[1].revents & POLLIN) accept_one();
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents) on_readable(conns_[i - 2]);
      }
      // One decoding "step" per millisecond, so concurrent requests interleave.
      if (std::chrono::steady_clock::now() - last_step >= std::chrono::milliseconds(1)) {
        last_step = std::chrono::steady_clock::now();
        for (auto& c : conns_) step(c);
      }
      for (auto& c : conns_) {
        if (c.dead) ::close(c.fd);
      }
      std::erase_if(conns_, [](const Conn& c) { return c.dead; });
    }
  }

  void accept_one() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    conns_.push_back(Conn{fd, {}, {}, false, 0});
    if (cfg_.hello != HelloReply::refuse) return;
    send_error(conns_.back(), 0, SPECD_E_ACCESS, "ACCESS", "uid 1000 (groups 1000) is not allowed by the daemon's [access] lists");
    conns_.back().dead = true;
  }

  void on_readable(Conn& c) {
    uint8_t buf[65536];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.insert(c.in.end(), buf, buf + n);
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) c.dead = true;
      break;
    }
    while (!c.dead && c.in.size() >= 4) {
      const uint32_t len = c.in[0] | c.in[1] << 8 | c.in[2] << 16 | static_cast<uint32_t>(c.in[3]) << 24;
      if (c.in.size() < 4 + len) break;
      std::vector<uint8_t> frame(c.in.begin() + 4, c.in.begin() + 4 + len);
      c.in.erase(c.in.begin(), c.in.begin() + 4 + len);
      flatbuffers::Verifier v(frame.data(), frame.size());
      if (!wire::VerifyEnvelopeBuffer(v)) {
        std::lock_guard<std::mutex> lock(mu_);
        ++seen_.bad_frames;
        continue;
      }
      handle(c, *wire::GetEnvelope(frame.data()));
    }
  }

  void send(Conn& c, const std::vector<uint8_t>& bytes) {
    size_t off = 0;
    while (!c.dead && off < bytes.size()) {
      const ssize_t n = ::send(c.fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      } else {
        c.dead = true;
      }
    }
  }

  void send(Conn& c, flatbuffers::FlatBufferBuilder& fbb, uint64_t id, wire::Body type, flatbuffers::Offset<void> body) {
    fbb.Finish(wire::CreateEnvelope(fbb, id, type, body));
    std::vector<uint8_t> bytes(4);
    const uint32_t n = fbb.GetSize();
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
    bytes.insert(bytes.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + n);
    send(c, bytes);
  }

  void send_error(Conn& c, uint64_t id, int32_t code, const std::string& name, const std::string& message) {
    flatbuffers::FlatBufferBuilder fbb;
    const auto body = wire::CreateErrorDirect(fbb, code, name.c_str(), message.c_str());
    send(c, fbb, id, wire::Body::Error, body.Union());
  }

  void send_garbage(Conn& c) {
    std::vector<uint8_t> bytes = {64, 0, 0, 0};
    for (int i = 0; i < 64; ++i) bytes.push_back(static_cast<uint8_t>(0xA5 ^ (i * 37)));
    send(c, bytes);
  }

  void handle(Conn& c, const wire::Envelope& env) {
    switch (env.body_type()) {
      case wire::Body::Hello: return on_hello(c, *env.body_as_Hello());
      case wire::Body::Generate: return on_generate(c, env.request_id(), *env.body_as_Generate());
      case wire::Body::Cancel: {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.cancels.push_back(env.request_id());
        for (auto& g : c.gens) {
          if (g.id == env.request_id()) g.cancel = true;
        }
        return;
      }
      case wire::Body::StatusRequest: return on_status(c, env.request_id());
      case wire::Body::ListRuns: return on_list_runs(c, env.request_id(), *env.body_as_ListRuns());
      default: return send_error(c, env.request_id(), SPECD_E_PROTOCOL, "PROTOCOL", "unexpected message");
    }
  }

  void on_hello(Conn& c, const wire::Hello& h) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.client_name = str(h.client_name());
      seen_.hello_version = h.protocol_version();
    }
    switch (cfg_.hello) {
      case HelloReply::welcome: {
        flatbuffers::FlatBufferBuilder fbb;
        const auto w = wire::CreateWelcomeDirect(fbb, cfg_.protocol_version, "fake 9.9.9", cfg_.max_frame_bytes, 4096, 2048);
        return send(c, fbb, 0, wire::Body::Welcome, w.Union());
      }
      case HelloReply::error: return send_error(c, 0, SPECD_E_VERSION, "VERSION", "protocol 1 is too old for this daemon");
      case HelloReply::garbage: return send_garbage(c);
      case HelloReply::silent: return;
      case HelloReply::hangup: c.dead = true; return;
      case HelloReply::refuse: return;  // refused at accept
    }
  }

  void on_generate(Conn& c, uint64_t id, const wire::Generate& g) {
    SeenGenerate s;
    s.id = id;
    s.model = str(g.model());
    s.prompt_text = str(g.prompt_text());
    if (g.prompt_ids()) s.prompt_ids.assign(g.prompt_ids()->begin(), g.prompt_ids()->end());
    s.max_tokens = g.max_tokens();
    if (const auto* sm = g.sampling()) {
      s.temperature = sm->temperature();
      s.top_k = sm->top_k();
      s.top_p = sm->top_p();
      s.min_p = sm->min_p();
      s.seed = sm->seed();
    }
    if (g.stop_strings()) {
      for (const auto* x : *g.stop_strings()) s.stop.push_back(x->str());
    }
    s.decoder = str(g.decoder());
    s.options = str(g.decoder_options_json());
    s.stream = g.stream();
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.generates.push_back(s);
    }
    if (s.decoder == "nope") return send_error(c, id, SPECD_E_UNKNOWN_DECODER, "UNKNOWN_DECODER", "unknown decoder 'nope'");
    Gen gen;
    gen.id = id;
    gen.mode = s.prompt_text;
    gen.max_tokens = s.max_tokens;
    gen.base = s.prompt_ids.empty() ? 100 : s.prompt_ids.back();
    gen.prompt_tokens = s.prompt_ids.empty() ? s.prompt_text.size() : s.prompt_ids.size();
    gen.stop = s.stop;
    gen.stream = s.stream;
    if (gen.mode == "pair") ++c.pairs;
    c.gens.push_back(gen);
  }

  void on_status(Conn& c, uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++seen_.status_requests;
    }
    if (!cfg_.answer_status) return;
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::ModelStatus>> models = {
        wire::CreateModelStatusDirect(fbb, "stories260K", "/m/stories260K.gguf", 512, 512, 1048576, "cuda:0", 4096, 65536,
                                      nullptr, 0, 0, nullptr, false, false, 128, 100, 20),
        wire::CreateModelStatusDirect(fbb, "tiny", "/m/tiny.gguf", 32000, 2048, 123)};  // an older daemon: no device
    std::vector<flatbuffers::Offset<wire::DecoderInfo>> decoders = {
        wire::CreateDecoderInfoDirect(fbb, "ar", "1.0", "autoregressive", "/d/ar.so"),
        wire::CreateDecoderInfoDirect(fbb, "ngram", "1.1", "n-gram lookup", "/d/ngram.so")};
    const auto reply = wire::CreateStatusReplyDirect(fbb, "fake 9.9.9", 3723.5, &models, &decoders, 1, 2, 3, 128, 100, 16384, 20);
    send(c, fbb, id, wire::Body::StatusReply, reply.Union());
  }

  void on_list_runs(Conn& c, uint64_t id, const wire::ListRuns& q) {
    SeenRunsQuery s{q.last(), str(q.decoder()), str(q.model()), q.since_unix_ms()};
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.runs_queries.push_back(s);
    }
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::RunRecord>> runs;
    for (int i = 0; i < std::min(s.last, 3); ++i) {
      runs.push_back(wire::CreateRunRecordDirect(
          fbb, 10 - i, 1700000000000 + i, 1700000000500 + i, 1000, 4242 + i, s.model.empty() ? "stories260K" : s.model.c_str(),
          s.decoder.empty() ? "ar" : s.decoder.c_str(), "{}", 5, 20, 21, "[0,20]", 2.5, 300.0,
          i == 2 ? "error" : "length", i == 2 ? "KV_FULL: kv cache full" : "",
          i == 1 ? R"({"k=4":12,"plain":3})" : nullptr,  // the others as from a daemon older than the field
          i == 1 ? "http" : nullptr));
    }
    const auto reply = wire::CreateRunListDirect(fbb, &runs, 7);
    send(c, fbb, id, wire::Body::RunList, reply.Union());
  }

  // Emit up to count tokens as one event; returns true when a stop string ended the text.
  bool emit(Conn& c, Gen& g, int count) {
    std::vector<int32_t> ids;
    std::string text;
    bool stopped = false;
    for (int i = 0; i < count && !stopped; ++i) {
      const auto k = static_cast<int32_t>(g.ids.size());
      // Appended piecewise: "t" + to_string(k) trips GCC 12's -Wrestrict false positive.
      std::string piece = "t";
      piece += std::to_string(k);
      piece += ' ';
      ids.push_back(g.base + k);
      text += piece;
      g.ids.push_back(g.base + k);
      g.text += piece;
      for (const auto& s : g.stop) {
        if (g.text.size() >= s.size() && g.text.compare(g.text.size() - s.size(), s.size(), s) == 0) stopped = true;
      }
    }
    if (g.stream) {
      flatbuffers::FlatBufferBuilder fbb;
      const auto ev = wire::CreateTokenEventDirect(fbb, &ids, text.c_str(), static_cast<uint32_t>(g.ids.size()));
      send(c, fbb, g.id, wire::Body::TokenEvent, ev.Union());
    }
    return stopped;
  }

  void finish(Conn& c, Gen& g, const char* reason) {
    flatbuffers::FlatBufferBuilder fbb;
    const auto n = static_cast<int32_t>(g.ids.size());
    std::vector<int32_t> hist = {0, n};
    const auto usage = wire::CreateUsageDirect(fbb, static_cast<int32_t>(g.prompt_tokens), n, n + 1, 1.0f, &hist, 1.5, 250.0);
    const auto f = wire::CreateFinishedDirect(fbb, reason, &g.ids, g.text.c_str(), usage, 1000 + static_cast<int64_t>(g.id));
    send(c, fbb, g.id, wire::Body::Finished, f.Union());
    g.mode = "#done";
  }

  // One decoding step for each request of c.
  void step(Conn& c) {
    for (auto& g : c.gens) {
      if (c.dead) return;
      if (g.mode == "hang") {  // one token, then wait for the cancel
        if (g.ids.empty()) emit(c, g, 1);
        else if (g.cancel) finish(c, g, "cancel");
      } else if (g.mode == "drop") {  // two tokens, then hang up
        if (g.ids.size() < 2) emit(c, g, 1);
        else c.dead = true;
      } else if (g.mode == "garbage") {
        send_garbage(c);
        g.mode = "#done";
      } else if (g.mode == "oversize") {
        send(c, std::vector<uint8_t>{0xff, 0xff, 0xff, 0x7f, 1, 2, 3});
        g.mode = "#done";
      } else if (g.mode == "mismatch") {  // a reply of the wrong type for this request
        flatbuffers::FlatBufferBuilder fbb;
        send(c, fbb, g.id, wire::Body::RunList, wire::CreateRunList(fbb).Union());
        g.mode = "#done";
      } else if (g.mode == "conn-error") {
        send_error(c, 0, SPECD_E_LIMIT, "LIMIT", "too many requests on this connection");
        g.mode = "#done";
      } else if (g.mode == "pair" && c.pairs < 2) {
        // Held until its partner arrives, so the two always run side by side.
      } else if (g.mode == "bad-reason") {
        finish(c, g, "error");
      } else if (g.mode != "#done") {
        if (g.cancel) {
          finish(c, g, "cancel");
        } else if (static_cast<int32_t>(g.ids.size()) >= g.max_tokens) {
          finish(c, g, "length");
        } else {
          // Now and then two tokens in one step, as a speculative decoder would accept.
          const int left = g.max_tokens - static_cast<int>(g.ids.size());
          if (emit(c, g, std::min(left, g.ids.size() % 3 == 2 ? 2 : 1))) finish(c, g, "stop");
        }
      }
    }
    std::erase_if(c.gens, [](const Gen& g) { return g.mode == "#done"; });
  }

  FakeConfig cfg_;
  std::string path_;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  std::vector<Conn> conns_;  // daemon thread only
  std::mutex mu_;
  Seen seen_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Client-side helpers.

struct ResultCopy {
  int32_t finish_reason = 0;
  std::string reason, text;
  std::vector<int32_t> ids, hist;
  int32_t prompt_tokens = 0, generated_tokens = 0, forwards = 0;
  double tokens_per_forward = 0, ttft_ms = 0, decode_tok_s = 0;
  int64_t run_id = 0;
};

ResultCopy copy_result(const specd_gen_result& r) {
  REQUIRE(r.struct_size >= sizeof(specd_gen_result));
  ResultCopy c;
  c.finish_reason = r.finish_reason;
  c.reason = r.finish_reason_name;
  c.text.assign(r.text, r.text_len);
  c.ids.assign(r.token_ids, r.token_ids + r.n_tokens);
  c.hist.assign(r.accepted_hist, r.accepted_hist + r.n_accepted_hist);
  c.prompt_tokens = r.prompt_tokens;
  c.generated_tokens = r.generated_tokens;
  c.forwards = r.forwards;
  c.tokens_per_forward = r.tokens_per_forward;
  c.ttft_ms = r.ttft_ms;
  c.decode_tok_s = r.decode_tok_s;
  c.run_id = r.run_id;
  return c;
}

// The user pointer of the C callbacks below: records everything a request saw.
struct Collector {
  std::vector<int32_t> ids;
  std::string text;
  std::vector<uint32_t> steps;
  std::atomic<int> token_events{0};
  int done_calls = 0;
  int rc = 1;
  std::string message;
  std::optional<ResultCopy> result;
  std::vector<int>* order = nullptr;  // shared log of which request each event belonged to
  int tag = 0;
  bool cancel_in_token = false;
  specd_client* close_in_done = nullptr;
  std::function<void(specd_gen*)> in_token;
  std::function<void()> in_done;
};

void collect_token(specd_gen* g, const specd_token_event* ev, void* user) {
  auto* c = static_cast<Collector*>(user);
  CHECK(ev->struct_size >= sizeof(specd_token_event));
  c->ids.insert(c->ids.end(), ev->ids, ev->ids + ev->n_ids);
  c->text.append(ev->text, ev->text_len);
  CHECK(std::strlen(ev->text) == ev->text_len);
  c->steps.push_back(ev->step);
  if (c->order) c->order->push_back(c->tag);
  ++c->token_events;
  if (c->cancel_in_token) CHECK(specd_gen_cancel(g) == SPECD_OK);
  if (c->in_token) c->in_token(g);
}

void collect_done(specd_gen*, int rc, const char* message, const specd_gen_result* r, void* user) {
  auto* c = static_cast<Collector*>(user);
  ++c->done_calls;
  c->rc = rc;
  REQUIRE(message != nullptr);
  c->message = message;
  if (r) c->result = copy_result(*r);
  if (c->close_in_done) specd_client_close(c->close_in_done);
  if (c->in_done) c->in_done();
}

specd_client* connect_to(const std::string& path, specd_error* err = nullptr, int32_t timeout_ms = 2000) {
  specd_client_opts o;
  specd_client_opts_init(&o);
  o.socket_path = path.c_str();
  o.client_name = "test_client";
  o.timeout_ms = timeout_ms;
  specd_client* c = nullptr;
  const int rc = specd_client_connect(&o, &c, err);
  if (rc != SPECD_OK) CHECK(c == nullptr);
  return c;
}

int connect_error(const std::string& path, std::string* message, int32_t timeout_ms = 2000) {
  specd_error err;
  specd_error_init(&err);
  specd_client* c = connect_to(path, &err, timeout_ms);
  if (c) {
    specd_client_close(c);
    return SPECD_OK;
  }
  *message = err.message;
  return err.code;
}

// Poll until pred() or 5 s pass.
bool poll_until(specd_client* c, const std::function<bool()>& pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    if (specd_client_poll(c, 20) < 0) return pred();
  }
  return true;
}

specd_gen* start(specd_client* c, Collector* col, const char* prompt, int32_t max_tokens = 5,
                 const std::function<void(specd_gen_params*)>& tweak = nullptr) {
  specd_gen_params p;
  specd_gen_params_init(&p);
  p.prompt_text = prompt;
  p.max_tokens = max_tokens;
  if (tweak) tweak(&p);
  specd_gen* g = nullptr;
  specd_error err;
  specd_error_init(&err);
  const int rc = specd_generate(c, &p, collect_token, collect_done, col, &g, &err);
  REQUIRE_MESSAGE(rc == SPECD_OK, err.message);
  REQUIRE(g != nullptr);
  return g;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string quoted(const std::string& s) { return "'" + s + "'"; }

bool have(const char* tool) { return run_command(std::string("command -v ") + tool + " >/dev/null 2>&1", nullptr) == 0; }

std::string specctl() { return quoted(build_root() + "/clients/specctl"); }

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("error names and messages cover SPECD_ERROR_MAP, extended codes and unknown codes") {
#define CHECK_CODE(name, value, msg)               \
  CHECK(std::string(specd_err_name(value)) == #name); \
  CHECK(std::string(specd_strerror(value)) == msg);
  SPECD_ERROR_MAP(CHECK_CODE)
#undef CHECK_CODE
  CHECK(std::string(specd_err_name(SPECD_OK)) == "OK");
  CHECK(std::string(specd_err_name(SPECD_E_PLUGIN - (1 << 8))) == "PLUGIN");
  CHECK(std::string(specd_strerror(-57)) == "unknown error -57");
  CHECK(std::string(specd_err_name(-57)) == "unknown error -57");
  CHECK(std::string(specd_strerror(-255)) == "unknown error -255");
  CHECK(std::string(specd_strerror(-57 - (3 << 8))) == "unknown error -57");
  CHECK(specd_strerror(INT_MIN) != nullptr);  // no overflow taking the primary code
  CHECK(specd_err_name(INT_MAX) != nullptr);
  CHECK(specd_strerror(-57) == specd_strerror(-57));  // a static string, not a per-call buffer
}

TEST_CASE("the version in the binary matches the header") {
  CHECK(specd_client_version_number() == SPECD_CLIENT_VERSION_NUMBER);
  CHECK(SPECD_CLIENT_VERSION_NUMBER == SPECD_CLIENT_VERSION_MAJOR * 1000000 + SPECD_CLIENT_VERSION_MINOR * 1000 +
                                           SPECD_CLIENT_VERSION_PATCH);
}

TEST_CASE("init functions fill defaults and never write past an older caller's struct") {
  specd_gen_params p;
  std::memset(&p, 0x5a, sizeof p);
  specd_gen_params_init(&p);
  CHECK(p.struct_size == sizeof p);
  CHECK(p.max_tokens == 128);
  CHECK(p.model == nullptr);
  CHECK(p.top_p == 1.0f);
  CHECK(p.temperature == 0.0f);
  CHECK(p.flags == SPECD_GEN_STREAM);
  CHECK(p.n_stop == 0);

  // A caller compiled when the struct ended after prompt_text: the library writes only that far.
  const size_t old_size = offsetof(specd_gen_params, prompt_text) + sizeof(const char*);
  std::vector<uint8_t> buf(sizeof(specd_gen_params), 0xee);
  specd_gen_params_init_sized(reinterpret_cast<specd_gen_params*>(buf.data()), old_size);
  CHECK(reinterpret_cast<specd_gen_params*>(buf.data())->struct_size == old_size);
  CHECK(std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(old_size), buf.end(), [](uint8_t b) { return b == 0xee; }));

  specd_runs_query q;
  specd_runs_query_init(&q);
  CHECK(q.last == 20);
  specd_client_opts o;
  specd_client_opts_init(&o);
  CHECK((o.socket_path == nullptr && o.timeout_ms == 0));
}

TEST_CASE("connect: no socket at the path is 'daemon not running'") {
  const std::string path = temp_dir() + "/absent.sock";
  std::string msg;
  CHECK(connect_error(path, &msg) == SPECD_E_IO);
  CHECK(msg == "daemon not running (no socket at " + path + ")");
}

TEST_CASE("connect: a socket file nobody listens on is 'daemon not running'") {
  const std::string path = temp_dir() + "/stale.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);  // the file stays, like after a daemon crash
  std::string msg;
  CHECK(connect_error(path, &msg) == SPECD_E_IO);
  CHECK(msg == "daemon not running (no socket at " + path + ")");
}

TEST_CASE("connect: permission denied on the socket is SPECD_E_ACCESS, and specctl exits 4 as for the daemon's lists") {
  FakeDaemon d;
  REQUIRE(::chmod(d.path().c_str(), 0) == 0);
  if (::geteuid() != 0) {
    std::string msg;
    CHECK(connect_error(d.path(), &msg) == SPECD_E_ACCESS);
    CHECK(msg == "permission denied on " + d.path());
    std::string out;
    CHECK(run_command(specctl() + " --socket " + quoted(d.path()) + " status 2>&1", &out) == 4);
    return;
  }
  // Root passes mode bits: a child takes an ordinary uid (the socket's directory stays reachable) and
  // runs a copy of specctl that uid can execute.
  REQUIRE(::chmod(std::filesystem::path(d.path()).parent_path().c_str(), 0711) == 0);
  const std::string user_specctl = quoted(tree_for_other_user() + "/clients/specctl");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(45000) != 0 || ::setuid(45000) != 0) ::_exit(10);
    std::string msg;
    const int rc = connect_error(d.path(), &msg);
    if (rc != SPECD_E_ACCESS) ::_exit(11);
    if (msg != "permission denied on " + d.path()) ::_exit(12);
    std::string out;
    ::_exit(run_command(user_specctl + " --socket " + quoted(d.path()) + " status 2>&1", &out) == 4 ? 0 : 13);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "child status " << status);
}

TEST_CASE("connect: bad arguments") {
  specd_client* c = reinterpret_cast<specd_client*>(1);
  specd_error err;
  specd_error_init(&err);
  specd_client_opts o;
  specd_client_opts_init(&o);
  const std::string longpath(200, 'x');
  o.socket_path = longpath.c_str();
  CHECK(specd_client_connect(&o, &c, &err) == SPECD_E_INVALID_ARG);
  CHECK(c == nullptr);
  CHECK(contains(err.message, "too long"));
  o.struct_size = 0;
  CHECK(specd_client_connect(&o, &c, &err) == SPECD_E_INVALID_ARG);
  CHECK(specd_client_connect(nullptr, nullptr, nullptr) == SPECD_E_INVALID_ARG);
  specd_client_close(nullptr);
  CHECK(specd_client_fd(nullptr) == -1);
  CHECK(specd_client_poll(nullptr, 0) == SPECD_E_INVALID_ARG);
  CHECK(specd_gen_cancel(nullptr) == SPECD_E_INVALID_ARG);
  specd_gen_result_free(nullptr);
  specd_status_free(nullptr);
  specd_runs_free(nullptr);
}

TEST_CASE("handshake: Hello carries the client name; NULL socket_path uses $SPECD_SOCKET") {
  FakeDaemon d;
  ::setenv("SPECD_SOCKET", d.path().c_str(), 1);
  specd_client* c = nullptr;
  specd_error err;
  specd_error_init(&err);
  const int rc = specd_client_connect(nullptr, &c, &err);
  ::unsetenv("SPECD_SOCKET");
  REQUIRE_MESSAGE(rc == SPECD_OK, err.message);
  CHECK(err.code == SPECD_OK);  // untouched on success
  CHECK(specd_client_fd(c) >= 0);
  specd_client_close(c);
  const Seen s = d.seen();
  CHECK(s.client_name == "libspecd-client 1.2.0");
  CHECK(s.hello_version == 1);
  CHECK(s.bad_frames == 0);
}

TEST_CASE("handshake failures: version, refusal, garbage, silence, hang-up") {
  std::string msg;
  SUBCASE("another protocol version") {
    FakeConfig cfg;
    cfg.protocol_version = 2;
    FakeDaemon d(cfg);
    CHECK(connect_error(d.path(), &msg) == SPECD_E_VERSION);
    CHECK(msg == "the daemon speaks protocol version 2; this client speaks version 1");
  }
  SUBCASE("an Error reply keeps its code and message") {
    FakeConfig cfg;
    cfg.hello = HelloReply::error;
    FakeDaemon d(cfg);
    CHECK(connect_error(d.path(), &msg) == SPECD_E_VERSION);
    CHECK(msg == "protocol 1 is too old for this daemon");
  }
  SUBCASE("garbage instead of Welcome") {
    FakeConfig cfg;
    cfg.hello = HelloReply::garbage;
    FakeDaemon d(cfg);
    CHECK(connect_error(d.path(), &msg) == SPECD_E_PROTOCOL);
    CHECK(contains(msg, "failed verification"));
  }
  SUBCASE("no answer within timeout_ms") {
    FakeConfig cfg;
    cfg.hello = HelloReply::silent;
    FakeDaemon d(cfg);
    CHECK(connect_error(d.path(), &msg, 100) == SPECD_E_IO);
    CHECK(msg == "the daemon did not answer the handshake within 100 ms");
  }
  SUBCASE("the daemon hangs up") {
    FakeConfig cfg;
    cfg.hello = HelloReply::hangup;
    FakeDaemon d(cfg);
    CHECK(connect_error(d.path(), &msg) == SPECD_E_IO);
    CHECK(msg == "the daemon closed the connection");
  }
  SUBCASE("refused and closed before the Hello went out: the daemon's Error, not EPIPE") {
    FakeConfig cfg;
    cfg.hello = HelloReply::refuse;
    FakeDaemon d(cfg);
    for (int i = 0; i < 5; ++i) {
      CAPTURE(i);
      g_delay_next_send_ms = 100;
      CHECK(connect_error(d.path(), &msg) == SPECD_E_ACCESS);
      CHECK(contains(msg, "is not allowed by the daemon's [access] lists"));
    }
  }
}

TEST_CASE("specctl prints why the daemon refused it; with --json as a JSON object") {
  FakeConfig cfg;
  cfg.hello = HelloReply::refuse;
  FakeDaemon d(cfg);
  for (int i = 0; i < 10; ++i) {
    std::string out;
    CHECK(run_command(specctl() + " --socket " + quoted(d.path()) + " status 2>&1", &out) == 4);
    CHECK_MESSAGE(out == "specctl: uid 1000 (groups 1000) is not allowed by the daemon's [access] lists\n", out);
  }
  std::string out;
  CHECK(run_command(specctl() + " --socket " + quoted(d.path()) + " status --json 2>/dev/null", &out) == 4);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["error"] == "ACCESS");
  CHECK(j["code"] == SPECD_E_ACCESS);
  CHECK(j["message"] == "uid 1000 (groups 1000) is not allowed by the daemon's [access] lists");
}

TEST_CASE("generate streams tokens in order, then on_done runs once with the result") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector col;
  const char* stops[] = {"never"};
  specd_gen_params p;
  specd_gen_params_init(&p);
  p.prompt_text = "Once upon a time";
  p.max_tokens = 7;
  p.model = "stories260K";
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.9f;
  p.min_p = 0.05f;
  p.seed = 1234567890123ull;
  p.stop = stops;
  p.n_stop = 1;
  p.decoder = "ngram";
  p.decoder_options_json = "{\"k\":\"4\"}";
  specd_gen* g = nullptr;
  REQUIRE(specd_generate(c, &p, collect_token, collect_done, &col, &g, nullptr) == SPECD_OK);
  REQUIRE(poll_until(c, [&] { return col.done_calls > 0; }));
  for (int i = 0; i < 5; ++i) specd_client_poll(c, 5);  // nothing more may arrive for it
  CHECK(col.done_calls == 1);
  CHECK(col.rc == SPECD_OK);
  CHECK(col.message.empty());
  const std::vector<int32_t> want = {100, 101, 102, 103, 104, 105, 106};
  CHECK(col.ids == want);
  CHECK(col.token_events < 7);  // some steps carried two tokens
  CHECK(std::is_sorted(col.steps.begin(), col.steps.end()));
  REQUIRE(col.result);
  CHECK(col.result->ids == want);
  CHECK(col.result->text == col.text);
  CHECK(col.text == "t0 t1 t2 t3 t4 t5 t6 ");
  CHECK(col.result->finish_reason == SPECD_FINISH_LENGTH);
  CHECK(col.result->reason == "length");
  CHECK(col.result->prompt_tokens == 16);
  CHECK(col.result->generated_tokens == 7);
  CHECK(col.result->forwards == 8);
  CHECK(col.result->tokens_per_forward == 1.0);
  CHECK(col.result->ttft_ms == 1.5);
  CHECK(col.result->decode_tok_s == 250.0);
  CHECK(col.result->run_id == 1001);
  CHECK(col.result->hist == std::vector<int32_t>{0, 7});

  const Seen s = d.seen();
  REQUIRE(s.generates.size() == 1);
  const SeenGenerate& sg = s.generates[0];
  CHECK(sg.id == 1);
  CHECK(sg.model == "stories260K");
  CHECK(sg.prompt_text == "Once upon a time");
  CHECK(sg.prompt_ids.empty());
  CHECK(sg.max_tokens == 7);
  CHECK(sg.temperature == 0.8f);
  CHECK(sg.top_k == 40);
  CHECK(sg.top_p == 0.9f);
  CHECK(sg.min_p == 0.05f);
  CHECK(sg.seed == 1234567890123ull);
  CHECK(sg.stop == std::vector<std::string>{"never"});
  CHECK(sg.decoder == "ngram");
  CHECK(sg.options == "{\"k\":\"4\"}");
  CHECK(sg.stream);
  CHECK(s.bad_frames == 0);
  specd_client_close(c);
}

TEST_CASE("prompt ids, stop strings and the stream flag") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector a;
  const int32_t ids[] = {1, 403, 407};
  start(c, &a, "", 10, [&](specd_gen_params* p) {
    p->prompt_ids = ids;
    p->n_prompt_ids = 3;
    p->flags = 0;  // no streaming: only on_done
  });
  Collector b;
  const char* stops[] = {"t2 "};
  start(c, &b, "story", 10, [&](specd_gen_params* p) {
    p->stop = stops;
    p->n_stop = 1;
  });
  REQUIRE(poll_until(c, [&] { return a.done_calls > 0 && b.done_calls > 0; }));
  CHECK(a.token_events == 0);
  REQUIRE(a.result);
  CHECK(a.result->ids.size() == 10);
  CHECK(a.result->ids.front() == 407);
  CHECK(a.result->prompt_tokens == 3);
  REQUIRE(b.result);
  CHECK(b.result->finish_reason == SPECD_FINISH_STOP);
  CHECK(b.result->text == "t0 t1 t2 ");
  const Seen s = d.seen();
  REQUIRE(s.generates.size() == 2);
  CHECK(s.generates[0].prompt_ids == std::vector<int32_t>{1, 403, 407});
  CHECK(!s.generates[0].stream);
  specd_client_close(c);
}

TEST_CASE("specd_client_fd is readable when there is work, for callers with their own loop") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector col;
  start(c, &col, "own loop", 3);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (col.done_calls == 0 && std::chrono::steady_clock::now() < end) {
    pollfd pfd{specd_client_fd(c), POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) CHECK(specd_client_poll(c, 0) >= 0);
  }
  CHECK(col.done_calls == 1);
  CHECK(col.ids.size() == 3);
  CHECK(specd_client_poll(c, 0) == 0);  // idle: nothing to do, no wait
  specd_client_close(c);
}

TEST_CASE("generate_sync returns an owned result; daemon errors come back with their message") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  specd_gen_params p;
  specd_gen_params_init(&p);
  p.prompt_text = "sync";
  p.max_tokens = 4;
  specd_gen_result* r = nullptr;
  specd_error err;
  specd_error_init(&err);
  REQUIRE(specd_generate_sync(c, &p, &r, &err) == SPECD_OK);
  REQUIRE(r);
  const ResultCopy copy = copy_result(*r);
  CHECK(copy.ids == std::vector<int32_t>{100, 101, 102, 103});
  CHECK(copy.text == "t0 t1 t2 t3 ");
  specd_gen_result_free(r);
  CHECK(!d.seen().generates.back().stream);  // nobody would read the events

  p.decoder = "nope";
  CHECK(specd_generate_sync(c, &p, &r, &err) == SPECD_E_UNKNOWN_DECODER);
  CHECK(r == nullptr);
  CHECK(err.code == SPECD_E_UNKNOWN_DECODER);
  CHECK(std::string(err.message) == "unknown decoder 'nope'");

  Collector col;
  start(c, &col, "async", 3, [](specd_gen_params* q) { q->decoder = "nope"; });
  REQUIRE(poll_until(c, [&] { return col.done_calls > 0; }));
  CHECK(col.rc == SPECD_E_UNKNOWN_DECODER);
  CHECK(col.message == "unknown decoder 'nope'");
  CHECK(!col.result);
  specd_client_close(c);
}

TEST_CASE("specd_generate rejects bad arguments without starting anything") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector col;
  specd_gen_params p;
  specd_gen_params_init(&p);
  specd_gen* g = reinterpret_cast<specd_gen*>(1);
  specd_error err;
  specd_error_init(&err);
  CHECK(specd_generate(c, &p, collect_token, nullptr, &col, &g, &err) == SPECD_E_INVALID_ARG);
  CHECK(g == nullptr);
  CHECK(specd_generate(c, nullptr, collect_token, collect_done, &col, &g, &err) == SPECD_E_INVALID_ARG);
  p.n_prompt_ids = 3;
  CHECK(specd_generate(c, &p, collect_token, collect_done, &col, &g, &err) == SPECD_E_INVALID_ARG);
  CHECK(contains(err.message, "prompt_ids is NULL"));
  p.n_prompt_ids = 0;
  p.n_stop = 1;
  CHECK(specd_generate(c, &p, collect_token, collect_done, &col, &g, &err) == SPECD_E_INVALID_ARG);
  p.n_stop = 0;
  p.n_messages = 1;  // client 1.2: a conversation needs both arrays, and no NULL in them
  CHECK(specd_generate(c, &p, collect_token, collect_done, &col, &g, &err) == SPECD_E_INVALID_ARG);
  CHECK(contains(err.message, "message_roles or message_contents is NULL"));
  const char* roles[] = {"user"};
  const char* no_content[] = {nullptr};
  p.message_roles = roles;
  p.message_contents = no_content;
  CHECK(specd_generate(c, &p, collect_token, collect_done, &col, &g, &err) == SPECD_E_INVALID_ARG);
  CHECK(contains(err.message, "message 0 has a NULL role or content"));
  p.n_messages = 0;
  p.struct_size = 0;
  CHECK(specd_generate(c, &p, collect_token, collect_done, &col, &g, &err) == SPECD_E_INVALID_ARG);
  CHECK(contains(err.message, "specd_gen_params_init"));
  specd_client_close(c);
  CHECK(col.done_calls == 0);
  CHECK(d.seen().generates.empty());
}

TEST_CASE("a request larger than the daemon's frame limit fails with SPECD_E_LIMIT") {
  FakeConfig cfg;
  cfg.max_frame_bytes = 1024;
  FakeDaemon d(cfg);
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  const std::string big(4096, 'a');
  specd_gen_params p;
  specd_gen_params_init(&p);
  p.prompt_text = big.c_str();
  Collector col;
  specd_error err;
  specd_error_init(&err);
  CHECK(specd_generate(c, &p, collect_token, collect_done, &col, nullptr, &err) == SPECD_E_LIMIT);
  CHECK(contains(err.message, "at most 1024 bytes"));
  start(c, &col, "small", 2);  // the connection is still fine
  REQUIRE(poll_until(c, [&] { return col.done_calls > 0; }));
  CHECK(col.rc == SPECD_OK);
  specd_client_close(c);
}

TEST_CASE("cancel from another thread: on_done once with SPECD_E_CANCELED and the partial output") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector col;
  specd_gen* g = start(c, &col, "hang", 100);
  std::thread canceller([&col, g] {
    while (col.token_events.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    CHECK(specd_gen_cancel(g) == SPECD_OK);
    CHECK(specd_gen_cancel(g) == SPECD_OK);  // twice is harmless
  });
  const bool done = poll_until(c, [&] { return col.done_calls > 0; });
  canceller.join();
  REQUIRE(done);
  CHECK(col.done_calls == 1);
  CHECK(col.rc == SPECD_E_CANCELED);
  CHECK(col.message == "generation canceled");
  REQUIRE(col.result);
  CHECK(col.result->finish_reason == SPECD_FINISH_CANCEL);
  CHECK(col.result->ids == std::vector<int32_t>{100});
  CHECK(d.seen().cancels == std::vector<uint64_t>{1});  // one Cancel frame, for request 1
  specd_client_close(c);
}

TEST_CASE("cancel inside on_token") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector col;
  col.cancel_in_token = true;
  start(c, &col, "long", 1000);
  REQUIRE(poll_until(c, [&] { return col.done_calls > 0; }));
  CHECK(col.rc == SPECD_E_CANCELED);
  CHECK(col.ids.size() < 1000);
  specd_client_close(c);
}

TEST_CASE("two generations run concurrently on one connection") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  std::vector<int> order;
  Collector a, b;
  a.order = b.order = &order;
  a.tag = 1;
  b.tag = 2;
  const int32_t ids_a[] = {1000};
  const int32_t ids_b[] = {2000};
  start(c, &a, "pair", 12, [&](specd_gen_params* p) {
    p->prompt_ids = ids_a;
    p->n_prompt_ids = 1;
  });
  start(c, &b, "pair", 12, [&](specd_gen_params* p) {
    p->prompt_ids = ids_b;
    p->n_prompt_ids = 1;
  });
  REQUIRE(poll_until(c, [&] { return a.done_calls > 0 && b.done_calls > 0; }));
  CHECK(a.done_calls == 1);
  CHECK(b.done_calls == 1);
  std::vector<int32_t> want_a, want_b;
  for (int i = 0; i < 12; ++i) {
    want_a.push_back(1000 + i);
    want_b.push_back(2000 + i);
  }
  CHECK(a.ids == want_a);
  CHECK(b.ids == want_b);
  // Interleaved: b's first event came before a's last.
  const auto first_b = std::find(order.begin(), order.end(), 2);
  const auto last_a = std::find(order.rbegin(), order.rend(), 1).base();
  CHECK(first_b < last_a);
  specd_client_close(c);
}

TEST_CASE("the daemon hanging up mid-stream ends every request once with SPECD_E_IO") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector a, b;
  start(c, &a, "drop", 100);
  start(c, &b, "hang", 100);
  int rc = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (rc >= 0 && std::chrono::steady_clock::now() < end) rc = specd_client_poll(c, 20);
  CHECK(rc == SPECD_E_IO);
  CHECK(a.done_calls == 1);
  CHECK(b.done_calls == 1);
  CHECK(a.rc == SPECD_E_IO);
  CHECK(a.message == "the daemon closed the connection");
  CHECK(a.ids.size() == 2);
  CHECK(!a.result);
  CHECK(specd_client_poll(c, 0) == SPECD_E_IO);  // and stays so
  Collector late;
  specd_error err;
  specd_error_init(&err);
  specd_gen_params p;
  specd_gen_params_init(&p);
  CHECK(specd_generate(c, &p, nullptr, collect_done, &late, nullptr, &err) == SPECD_E_IO);
  specd_status* s = nullptr;
  CHECK(specd_client_status(c, &s, &err) == SPECD_E_IO);
  specd_client_close(c);
  CHECK(late.done_calls == 0);
  CHECK(a.done_calls == 1);
}

TEST_CASE("garbage and oversize frames are named protocol errors, not crashes") {
  FakeDaemon d;
  for (const char* mode : {"garbage", "oversize"}) {
    CAPTURE(mode);
    specd_client* c = connect_to(d.path());
    REQUIRE(c);
    Collector bad, other;
    start(c, &other, "hang", 100);
    start(c, &bad, mode, 100);
    int rc = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (rc >= 0 && std::chrono::steady_clock::now() < end) rc = specd_client_poll(c, 20);
    CHECK(rc == SPECD_E_PROTOCOL);
    CHECK(bad.done_calls == 1);
    CHECK(other.done_calls == 1);
    CHECK(bad.rc == SPECD_E_PROTOCOL);
    CHECK(other.rc == SPECD_E_PROTOCOL);
    if (std::string(mode) == "garbage") {
      CHECK(bad.message == "frame of 64 bytes failed verification");
    } else {
      CHECK(bad.message == "frame of 2147483647 bytes exceeds the limit of 67108864 bytes");
    }
    CHECK(specd_client_poll(c, 0) == SPECD_E_PROTOCOL);
    specd_client_close(c);
  }
}

TEST_CASE("a reply of the wrong type fails that request only; an Error for request 0 ends the session") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector bad, good;
  start(c, &bad, "mismatch", 3);
  start(c, &good, "fine", 3);
  REQUIRE(poll_until(c, [&] { return bad.done_calls > 0 && good.done_calls > 0; }));
  CHECK(bad.rc == SPECD_E_PROTOCOL);
  CHECK(bad.message == "the daemon answered a Generate with RunList");
  CHECK(good.rc == SPECD_OK);

  Collector victim, trigger;
  start(c, &victim, "hang", 100);
  start(c, &trigger, "conn-error", 3);
  int rc = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (rc >= 0 && std::chrono::steady_clock::now() < end) rc = specd_client_poll(c, 20);
  CHECK(rc == SPECD_E_LIMIT);
  CHECK(victim.done_calls == 1);
  CHECK(trigger.done_calls == 1);
  CHECK(victim.message == "the daemon closed the session: too many requests on this connection");
  specd_client_close(c);
}

TEST_CASE("a Finished with reason 'error' is not reported as success") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector col;
  start(c, &col, "bad-reason", 3);
  REQUIRE(poll_until(c, [&] { return col.done_calls > 0; }));
  CHECK(col.rc == SPECD_E_INTERNAL);
  specd_client_close(c);
}

TEST_CASE("close ends outstanding requests with SPECD_E_CANCELED before it returns") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector a, b;
  start(c, &a, "hang", 100);
  start(c, &b, "hang", 100);
  REQUIRE(poll_until(c, [&] { return a.token_events > 0 && b.token_events > 0; }));
  specd_client_close(c);
  CHECK(a.done_calls == 1);
  CHECK(b.done_calls == 1);
  CHECK(a.rc == SPECD_E_CANCELED);
  CHECK(a.message == "the client was closed");
}

TEST_CASE("callbacks may start requests and close the client; blocking calls refuse to nest") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  Collector second;
  Collector first;
  int nested_rc = 0;
  first.in_token = [&](specd_gen*) {
    specd_status* s = nullptr;
    specd_error err;
    specd_error_init(&err);
    nested_rc = specd_client_status(c, &s, &err);
    if (specd_client_poll(c, 0) != SPECD_E_INVALID_ARG) nested_rc = 1;
  };
  first.in_done = [&] { start(c, &second, "chained", 2); };
  start(c, &first, "first", 2);
  REQUIRE(poll_until(c, [&] { return second.done_calls > 0; }));
  CHECK(nested_rc == SPECD_E_INVALID_ARG);
  CHECK(second.rc == SPECD_OK);

  // specd_client_close inside on_done: deferred to the end of that poll, the others still end once.
  Collector closer, bystander;
  closer.close_in_done = c;
  start(c, &bystander, "hang", 100);
  start(c, &closer, "short", 1);
  int rc = 0;
  while (closer.done_calls == 0 && rc >= 0) rc = specd_client_poll(c, 20);  // c is gone after this poll
  CHECK(closer.done_calls == 1);
  CHECK(bystander.done_calls == 1);
  CHECK(bystander.rc == SPECD_E_CANCELED);
}

TEST_CASE("status and list runs decode every field and send the query") {
  FakeDaemon d;
  specd_client* c = connect_to(d.path());
  REQUIRE(c);
  specd_status* s = nullptr;
  specd_error err;
  specd_error_init(&err);
  REQUIRE(specd_client_status(c, &s, &err) == SPECD_OK);
  CHECK(s->struct_size == sizeof(specd_status));
  CHECK(std::string(s->daemon_version) == "fake 9.9.9");
  CHECK(s->uptime_s == 3723.5);
  REQUIRE(s->n_models == 2);
  CHECK(std::string(s->models[0]->name) == "stories260K");
  CHECK(std::string(s->models[0]->path) == "/m/stories260K.gguf");
  CHECK(s->models[0]->vocab == 512);
  CHECK(s->models[1]->ctx_len == 2048);
  CHECK(s->models[0]->weight_bytes == 1048576u);
  REQUIRE(SPECD_HAS(specd_status_model, s->models[0], device_memory_total));
  CHECK(std::string(s->models[0]->device) == "cuda:0");
  CHECK(s->models[0]->device_memory_used == 4096u);
  CHECK(s->models[0]->device_memory_total == 65536u);
  CHECK(std::string(s->models[1]->device).empty());
  CHECK(s->models[1]->device_memory_total == 0u);
  REQUIRE(s->n_decoders == 2);
  CHECK(std::string(s->decoders[1]->name) == "ngram");
  CHECK(std::string(s->decoders[1]->version) == "1.1");
  CHECK(std::string(s->decoders[1]->description) == "n-gram lookup");
  CHECK(std::string(s->decoders[1]->path) == "/d/ngram.so");
  CHECK(s->active_requests == 1);
  CHECK(s->queued_requests == 2);
  CHECK(s->connections == 3);
  CHECK(s->kv_blocks_total == 128);
  CHECK(s->kv_blocks_free == 100);
  CHECK(s->kv_bytes_per_block == 16384u);
  REQUIRE(SPECD_HAS(specd_status, s, kv_blocks_reserved));
  CHECK(s->kv_blocks_reserved == 20);
  REQUIRE(SPECD_HAS(specd_status_model, s->models[0], kv_blocks_reserved));
  CHECK(s->models[0]->kv_blocks_total == 128);
  CHECK(s->models[0]->kv_blocks_free == 100);
  CHECK(s->models[0]->kv_blocks_reserved == 20);
  CHECK(s->models[1]->kv_blocks_total == 0);  // an older daemon: not said
  specd_status_free(s);

  specd_runs* r = nullptr;
  REQUIRE(specd_client_list_runs(c, nullptr, &r, &err) == SPECD_OK);
  CHECK(r->n_runs == 3);
  CHECK(r->dropped_log_entries == 7u);
  specd_runs_free(r);

  specd_runs_query q;
  specd_runs_query_init(&q);
  q.last = 2;
  q.decoder = "ngram";
  q.model = "tiny";
  q.since_unix_ms = 1700000000000;
  REQUIRE(specd_client_list_runs(c, &q, &r, &err) == SPECD_OK);
  REQUIRE(r->n_runs == 2);
  const specd_run& run = *r->runs[1];
  CHECK(run.id == 9);
  CHECK(run.started_unix_ms == 1700000000001);
  CHECK(run.finished_unix_ms == 1700000000501);
  CHECK(run.peer_uid == 1000);
  CHECK(run.peer_pid == 4243);
  CHECK(std::string(run.model) == "tiny");
  CHECK(std::string(run.decoder) == "ngram");
  CHECK(std::string(run.decoder_options) == "{}");
  CHECK(run.prompt_tokens == 5);
  CHECK(run.generated_tokens == 20);
  CHECK(run.forwards == 21);
  CHECK(std::string(run.accepted_hist) == "[0,20]");
  CHECK(run.ttft_ms == 2.5);
  CHECK(run.decode_tok_s == 300.0);
  CHECK(std::string(run.finish_reason) == "length");
  CHECK(std::string(run.error).empty());
  REQUIRE(SPECD_HAS(specd_run, &run, auto_settings));
  CHECK(std::string(run.auto_settings) == R"({"k=4":12,"plain":3})");
  CHECK(std::string(r->runs[0]->auto_settings).empty());  // a daemon older than the field sent none
  REQUIRE(SPECD_HAS(specd_run, &run, via));
  CHECK(std::string(run.via) == "http");
  CHECK(std::string(r->runs[0]->via).empty());
  specd_runs_free(r);
  const Seen seen = d.seen();
  REQUIRE(seen.runs_queries.size() == 2);
  CHECK(seen.runs_queries[0].last == 20);
  CHECK(seen.runs_queries[1].last == 2);
  CHECK(seen.runs_queries[1].decoder == "ngram");
  CHECK(seen.runs_queries[1].model == "tiny");
  CHECK(seen.runs_queries[1].since_unix_ms == 1700000000000);
  specd_client_close(c);
}

TEST_CASE("a status reply that never comes times out; a late reply is dropped") {
  FakeConfig cfg;
  cfg.answer_status = false;
  FakeDaemon d(cfg);
  specd_client* c = connect_to(d.path(), nullptr, 500);
  REQUIRE(c);
  specd_status* s = nullptr;
  specd_error err;
  specd_error_init(&err);
  CHECK(specd_client_status(c, &s, &err) == SPECD_E_IO);
  CHECK(std::string(err.message) == "no status reply from the daemon within 500 ms");
  CHECK(s == nullptr);
  Collector col;  // the connection is still usable
  start(c, &col, "after timeout", 2);
  REQUIRE(poll_until(c, [&] { return col.done_calls > 0; }));
  CHECK(col.rc == SPECD_OK);
  specd_client_close(c);
}

TEST_CASE("C++ wrapper: RAII, callbacks, cancel after the end, exceptions from callbacks") {
  namespace cx = specd::client;
  FakeDaemon d;
  cx::Options o;
  o.socket_path = d.path();
  cx::Client client(o);
  cx::GenParams p;
  p.prompt_text = "wrapped";
  p.max_tokens = 4;
  std::string streamed;
  std::optional<cx::GenResult> result;
  int done = 0;
  cx::Generation g = client.generate(
      p, [&](const cx::TokenEvent& ev) { streamed += ev.text; },
      [&](int rc, std::string_view, const cx::GenResult* r) {
        ++done;
        CHECK(rc == SPECD_OK);
        if (r) result = *r;
      });
  while (!g.done()) client.poll(20);
  CHECK(done == 1);
  REQUIRE(result);
  CHECK(result->text == streamed);
  g.cancel();  // after the end: a no-op, not a use-after-free

  const cx::GenResult sync = client.generate_sync(p);
  CHECK(sync.token_ids.size() == 4);
  CHECK(client.status().models.size() == 2);
  cx::RunsQuery q;
  q.last = 1;
  CHECK(client.list_runs(q).runs.size() == 1);

  cx::GenParams bad = p;
  bad.decoder = "nope";
  try {
    (void)client.generate_sync(bad);
    FAIL("no exception");
  } catch (const cx::Error& e) {
    CHECK(e.code() == SPECD_E_UNKNOWN_DECODER);
    CHECK(std::string(e.what()) == "unknown decoder 'nope'");
  }

  cx::Generation thrower = client.generate(
      p, [](const cx::TokenEvent&) { throw std::runtime_error("from a callback"); }, [](int, std::string_view, const cx::GenResult*) {});
  bool caught = false;
  while (!thrower.done()) {
    try {
      client.poll(20);
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "from a callback";
    }
  }
  CHECK(caught);

  // Cancel from another thread through the wrapper, then move the client and let it close.
  cx::GenParams hang = p;
  hang.prompt_text = "hang";
  int cancel_rc = 0;
  std::atomic<bool> first{false};
  cx::Generation h = client.generate(
      hang, [&](const cx::TokenEvent&) { first = true; }, [&](int rc, std::string_view, const cx::GenResult*) { cancel_rc = rc; });
  std::thread t([&] {
    while (!first) std::this_thread::sleep_for(std::chrono::microseconds(200));
    h.cancel();
  });
  while (!h.done()) client.poll(20);
  t.join();
  CHECK(cancel_rc == SPECD_E_CANCELED);
  cx::Client moved = std::move(client);
  CHECK(moved.fd() >= 0);

  try {
    cx::Options none;
    none.socket_path = temp_dir() + "/none.sock";
    cx::Client nope(none);
    FAIL("connected to nothing");
  } catch (const cx::Error& e) {
    CHECK(e.code() == SPECD_E_IO);
    CHECK(contains(e.what(), "daemon not running"));
  }
}

TEST_CASE("exported symbols are exactly clients/client.symbols") {
  std::string out;
  const std::string so = build_root() + "/clients/libspecd-client.so";
  REQUIRE(run_command("nm -D --defined-only " + quoted(so) + " | awk '{print $3}'", &out) == 0);
  std::set<std::string> exported, listed;
  std::istringstream a(out);
  for (std::string s; a >> s;) exported.insert(s);
  const std::vector<uint8_t> bytes = read_file(source_root() + "/clients/client.symbols");
  std::istringstream b(std::string(bytes.begin(), bytes.end()));
  for (std::string s; b >> s;) listed.insert(s);
  REQUIRE(!listed.empty());
  CHECK(exported == listed);
  std::string soname;
  REQUIRE(run_command("objdump -p " + quoted(so) + " | awk '/SONAME/ {print $2}'", &soname) == 0);
  CHECK(soname == "libspecd-client.so.1\n");
}

TEST_CASE("client.h compiles alone as C11 -pedantic-errors and as C++20, also beside decoder.h") {
  if (!have("cc") || !have("c++")) {
    MESSAGE("skipped: cc or c++ not found");
    return;
  }
  const std::string dir = temp_dir();
  const std::string inc = quoted(source_root() + "/abi");
  const std::vector<std::string> sources = {
      "#include <specd/client.h>\n",
      "#include <specd/client.h>\n#include <specd/decoder.h>\n",
      "#include <specd/decoder.h>\n#include <specd/client.h>\n",
      // The inline initialisers and SPECD_HAS, used the way a C caller would.
      "#include <specd/client.h>\n"
      "int f(void);\n"
      "int f(void) { specd_gen_params p; specd_gen_params_init(&p); specd_error e; specd_error_init(&e);\n"
      "  return SPECD_HAS(specd_gen_params, &p, flags) ? (int)p.flags : SPECD_FINISH_LENGTH; }\n"};
  for (const std::string& text : sources) {
    CAPTURE(text);
    const std::string src = dir + "/only.c";
    write_file(src, std::vector<uint8_t>(text.begin(), text.end()));
    std::string out;
    CHECK_MESSAGE(run_command("cc -std=c11 -pedantic-errors -Wall -Wextra -Wstrict-prototypes -Werror -fsyntax-only -I" +
                                  inc + " " + quoted(src) + " 2>&1",
                              &out) == 0,
                  out);
    out.clear();
    CHECK_MESSAGE(run_command("c++ -std=c++20 -x c++ -pedantic-errors -Wall -Wextra -Werror -fsyntax-only -I" + inc + " " +
                                  quoted(src) + " 2>&1",
                              &out) == 0,
                  out);
  }
}

TEST_CASE("a C11 program built against client.h and libspecd-client.so generates through the fake daemon") {
  if (!have("cc")) {
    MESSAGE("skipped: cc not found");
    return;
  }
  const std::string dir = temp_dir();
  const std::string text =
      "#include <specd/client.h>\n"
      "#include <stdio.h>\n"
      "typedef struct { int events; int done; } state;\n"
      "static void on_token(specd_gen *g, const specd_token_event *ev, void *user) {\n"
      "  (void)g; fwrite(ev->text, 1, ev->text_len, stdout); ((state *)user)->events++; }\n"
      "static void on_done(specd_gen *g, int rc, const char *msg, const specd_gen_result *r, void *user) {\n"
      "  (void)g; printf(\"|%s|%s|%zu\\n\", specd_err_name(rc), msg, r ? r->n_tokens : (size_t)0);\n"
      "  ((state *)user)->done = 1; }\n"
      "int main(int argc, char **argv) {\n"
      "  specd_client_opts o; specd_client_opts_init(&o); o.socket_path = argc > 1 ? argv[1] : NULL;\n"
      "  specd_error err; specd_error_init(&err);\n"
      "  specd_client *c = NULL;\n"
      "  int rc = specd_client_connect(&o, &c, &err);\n"
      "  if (rc != SPECD_OK) { printf(\"%s: %s\\n\", specd_err_name(rc), err.message); return 3; }\n"
      "  specd_gen_params p; specd_gen_params_init(&p); p.prompt_text = \"c\"; p.max_tokens = 3;\n"
      "  state st = {0, 0}; specd_gen *g = NULL;\n"
      "  if (specd_generate(c, &p, on_token, on_done, &st, &g, &err) != SPECD_OK) return 1;\n"
      "  while (!st.done && specd_client_poll(c, 1000) >= 0) {}\n"
      "  specd_client_close(c);\n"
      "  return st.events > 0 ? 0 : 1; }\n";
  const std::string src = dir + "/c_client.c";
  write_file(src, std::vector<uint8_t>(text.begin(), text.end()));
  const std::string lib = build_root() + "/clients";
  std::string out;
  REQUIRE_MESSAGE(run_command("cc -std=c11 -pedantic-errors -Wall -Wextra -Werror -I" + quoted(source_root() + "/abi") +
                                  " " + quoted(src) + " -o " + quoted(dir + "/c_client") + " -L" + quoted(lib) +
                                  " -lspecd-client -Wl,-rpath," + quoted(lib) + " 2>&1",
                              &out) == 0,
                  out);
  // A sanitized build's library pulls in the sanitizer runtime after the program's own libraries.
  const std::string env = "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 ";
  FakeDaemon d;
  out.clear();
  CHECK_MESSAGE(run_command(env + quoted(dir + "/c_client") + " " + quoted(d.path()) + " 2>&1", &out) == 0, out);
  CHECK(out == "t0 t1 t2 |OK||3\n");
  out.clear();
  CHECK(run_command(env + quoted(dir + "/c_client") + " " + quoted(dir + "/none.sock") + " 2>&1", &out) == 3);
  CHECK(out == "IO: daemon not running (no socket at " + dir + "/none.sock)\n");
}

// Released 1.0 layouts on LP64: moving a field fails the build; appending still passes.
#if defined(__LP64__)
#define LAYOUT(T, f, off) static_assert(offsetof(T, f) == (off), "client 1.0: " #T "." #f " moved")
LAYOUT(specd_error, code, 4);
LAYOUT(specd_error, message, 8);
LAYOUT(specd_client_opts, timeout_ms, 4);
LAYOUT(specd_client_opts, socket_path, 8);
LAYOUT(specd_client_opts, client_name, 16);
LAYOUT(specd_client_opts, max_frame_bytes, 24);
LAYOUT(specd_gen_params, max_tokens, 4);
LAYOUT(specd_gen_params, model, 8);
LAYOUT(specd_gen_params, prompt_text, 16);
LAYOUT(specd_gen_params, prompt_ids, 24);
LAYOUT(specd_gen_params, n_prompt_ids, 32);
LAYOUT(specd_gen_params, temperature, 40);
LAYOUT(specd_gen_params, top_k, 44);
LAYOUT(specd_gen_params, top_p, 48);
LAYOUT(specd_gen_params, min_p, 52);
LAYOUT(specd_gen_params, seed, 56);
LAYOUT(specd_gen_params, stop, 64);
LAYOUT(specd_gen_params, n_stop, 72);
LAYOUT(specd_gen_params, decoder, 80);
LAYOUT(specd_gen_params, decoder_options_json, 88);
LAYOUT(specd_gen_params, flags, 96);
LAYOUT(specd_gen_params, message_roles, 104);  // client 1.2
LAYOUT(specd_gen_params, message_contents, 112);
LAYOUT(specd_gen_params, n_messages, 120);
LAYOUT(specd_token_event, step, 4);
LAYOUT(specd_token_event, ids, 8);
LAYOUT(specd_token_event, n_ids, 16);
LAYOUT(specd_token_event, text, 24);
LAYOUT(specd_token_event, text_len, 32);
LAYOUT(specd_gen_result, finish_reason, 4);
LAYOUT(specd_gen_result, finish_reason_name, 8);
LAYOUT(specd_gen_result, token_ids, 16);
LAYOUT(specd_gen_result, n_tokens, 24);
LAYOUT(specd_gen_result, text, 32);
LAYOUT(specd_gen_result, text_len, 40);
LAYOUT(specd_gen_result, prompt_tokens, 48);
LAYOUT(specd_gen_result, generated_tokens, 52);
LAYOUT(specd_gen_result, forwards, 56);
LAYOUT(specd_gen_result, tokens_per_forward, 64);
LAYOUT(specd_gen_result, ttft_ms, 72);
LAYOUT(specd_gen_result, decode_tok_s, 80);
LAYOUT(specd_gen_result, run_id, 88);
LAYOUT(specd_gen_result, accepted_hist, 96);
LAYOUT(specd_gen_result, n_accepted_hist, 104);
LAYOUT(specd_status_model, vocab, 4);
LAYOUT(specd_status_model, name, 8);
LAYOUT(specd_status_model, path, 16);
LAYOUT(specd_status_model, ctx_len, 24);
LAYOUT(specd_status_model, weight_bytes, 32);
LAYOUT(specd_status_model, device, 40);
LAYOUT(specd_status_model, device_memory_used, 48);
LAYOUT(specd_status_model, device_memory_total, 56);
LAYOUT(specd_status_model, architecture, 64);  // client 1.2
LAYOUT(specd_status_model, parameters, 72);
LAYOUT(specd_status_model, file_bytes, 80);
LAYOUT(specd_status_model, weight_types, 88);
LAYOUT(specd_status_model, n_weight_types, 96);
LAYOUT(specd_status_model, flags, 104);
LAYOUT(specd_status_model, kv_blocks_total, 108);
LAYOUT(specd_status_model, kv_blocks_reserved, 116);
LAYOUT(specd_status_weight_type, type, 8);
LAYOUT(specd_status_weight_type, parameters, 16);
LAYOUT(specd_status_weight_type, bytes, 24);
LAYOUT(specd_status_decoder, name, 8);
LAYOUT(specd_status_decoder, path, 32);
LAYOUT(specd_status, active_requests, 4);
LAYOUT(specd_status, daemon_version, 8);
LAYOUT(specd_status, uptime_s, 16);
LAYOUT(specd_status, models, 24);
LAYOUT(specd_status, n_models, 32);
LAYOUT(specd_status, decoders, 40);
LAYOUT(specd_status, n_decoders, 48);
LAYOUT(specd_status, queued_requests, 56);
LAYOUT(specd_status, kv_blocks_free, 68);
LAYOUT(specd_status, kv_bytes_per_block, 72);
LAYOUT(specd_status, kv_blocks_reserved, 80);  // client 1.2
LAYOUT(specd_runs_query, last, 4);
LAYOUT(specd_runs_query, decoder, 8);
LAYOUT(specd_runs_query, model, 16);
LAYOUT(specd_runs_query, since_unix_ms, 24);
LAYOUT(specd_run, peer_uid, 4);
LAYOUT(specd_run, id, 8);
LAYOUT(specd_run, started_unix_ms, 16);
LAYOUT(specd_run, finished_unix_ms, 24);
LAYOUT(specd_run, peer_pid, 32);
LAYOUT(specd_run, prompt_tokens, 36);
LAYOUT(specd_run, model, 40);
LAYOUT(specd_run, decoder, 48);
LAYOUT(specd_run, decoder_options, 56);
LAYOUT(specd_run, generated_tokens, 64);
LAYOUT(specd_run, forwards, 68);
LAYOUT(specd_run, accepted_hist, 72);
LAYOUT(specd_run, ttft_ms, 80);
LAYOUT(specd_run, decode_tok_s, 88);
LAYOUT(specd_run, finish_reason, 96);
LAYOUT(specd_run, error, 104);
LAYOUT(specd_run, auto_settings, 112);  // 1.2
LAYOUT(specd_run, via, 120);            // 1.2
LAYOUT(specd_runs, runs, 8);
LAYOUT(specd_runs, n_runs, 16);
LAYOUT(specd_runs, dropped_log_entries, 24);
#undef LAYOUT
#endif

TEST_CASE("specctl generate --json against the fake daemon") {
  FakeDaemon d;
  std::string out;
  const int rc = run_command(specctl() + " --socket " + quoted(d.path()) +
                                 " generate --json --prompt 'Once upon' --max-tokens 5 --decoder ngram"
                                 " --decoder-opt k=4 --decoder-opt depth=2 --temperature 0.5 --top-k 7 --top-p 0.9"
                                 " --min-p 0.1 --seed 42 --stop END --model stories260K 2>&1",
                             &out);
  REQUIRE_MESSAGE(rc == 0, out);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["token_ids"] == nlohmann::json({100, 101, 102, 103, 104}));
  CHECK(j["text"] == "t0 t1 t2 t3 t4 ");
  CHECK(j["finish_reason"] == "length");
  CHECK(j["generated_tokens"] == 5);  // the flat schema `specd generate --json` prints (cli/generation_report.h)
  CHECK(j["prompt_tokens"] == 9);
  CHECK(j["forwards"] == 6);
  CHECK(j.contains("tokens_per_forward"));
  CHECK(j.contains("ttft_ms"));
  CHECK(j.contains("decode_tok_s"));
  CHECK(j["decoder"] == "ngram");
  CHECK(j["device"].is_null());  // known in process only
  CHECK(j["run_id"] == 1001);
  const Seen s = d.seen();
  REQUIRE(s.generates.size() == 1);
  const SeenGenerate& g = s.generates[0];
  CHECK(nlohmann::json::parse(g.options) == nlohmann::json({{"k", "4"}, {"depth", "2"}}));
  CHECK(g.decoder == "ngram");
  CHECK(g.model == "stories260K");
  CHECK(g.temperature == 0.5f);
  CHECK(g.top_k == 7);
  CHECK(g.top_p == 0.9f);
  CHECK(g.min_p == 0.1f);
  CHECK(g.seed == 42u);
  CHECK(g.stop == std::vector<std::string>{"END"});
  CHECK(s.client_name == "specctl 1.2.0");
}

TEST_CASE("specctl streams text, and reports status, runs, decoders and models") {
  FakeDaemon d;
  const std::string base = specctl() + " --socket " + quoted(d.path()) + " ";
  std::string out;
  REQUIRE(run_command(base + "generate --prompt-ids 1,2,50 --max-tokens 3 2>/dev/null", &out) == 0);
  CHECK(out == "t0 t1 t2 \n");
  out.clear();
  REQUIRE(run_command(base + "status", &out) == 0);
  CHECK(contains(out, "fake 9.9.9"));
  CHECK(contains(out, "stories260K"));
  CHECK_MESSAGE(contains(out, "device cuda:0, 4.0 KiB held of a 64.0 KiB pool"), out);
  CHECK_MESSAGE(contains(out, "kv cache 128 blocks: 28 in use, 20 reserved by running requests"), out);
  CHECK_MESSAGE(contains(out, "kv cache  100 of 128 blocks free, 20 reserved, 16.0 KiB per block"), out);
  out.clear();
  REQUIRE(run_command(base + "status --json", &out) == 0);
  CHECK(nlohmann::json::parse(out)["models"][0]["device"] == "cuda:0");
  CHECK(nlohmann::json::parse(out)["models"][0]["device_memory_total"] == 65536);
  CHECK(nlohmann::json::parse(out)["models"][0]["kv_blocks_reserved"] == 20);
  CHECK(nlohmann::json::parse(out)["kv_blocks_reserved"] == 20);
  out.clear();
  REQUIRE(run_command(base + "decoders --json", &out) == 0);
  CHECK(nlohmann::json::parse(out).size() == 2);
  out.clear();
  REQUIRE(run_command(base + "models", &out) == 0);
  CHECK(contains(out, "/m/tiny.gguf"));
  out.clear();
  REQUIRE(run_command(base + "runs --last 2 --decoder ngram --json", &out) == 0);
  const auto runs = nlohmann::json::parse(out)["runs"];
  CHECK(runs.size() == 2);
  CHECK(runs[1]["auto_settings"] == nlohmann::json{{"k=4", 12}, {"plain", 3}});
  CHECK(runs[0]["auto_settings"] == nlohmann::json::object());  // none sent: an older daemon
  CHECK(runs[1]["via"] == "http");
  CHECK(runs[0]["via"] == "");
  CHECK(d.seen().runs_queries.back().decoder == "ngram");
  out.clear();
  REQUIRE(run_command(base + "runs", &out) == 0);
  CHECK(contains(out, "KV_FULL: kv cache full"));
  CHECK(contains(out, R"(auto {"k=4":12,"plain":3})"));  // the settings auto chose, after the finish column
  CHECK(contains(out, " http "));                        // the via column
}

TEST_CASE("specctl generate: Ctrl-C cancels the request") {
  FakeDaemon d;
  std::string out;
  // The fake daemon sends one token for "hang", then waits for the Cancel that SIGINT makes.
  // SIGINT repeats until specctl exits: one sent before its handler is installed is ignored (a
  // shell starts background jobs with SIGINT ignored).
  const int rc = run_command("(" + specctl() + " --socket " + quoted(d.path()) +
                                 " generate --prompt hang 2>&1 & pid=$!; for i in $(seq 100); do sleep 0.1;"
                                 " kill -INT $pid 2>/dev/null || break; done; wait $pid)",
                             &out);
  CHECK(rc == 1);
  CHECK_MESSAGE(contains(out, "t0 \n[cancel: "), out);
  CHECK_MESSAGE(contains(out, " 1 generated, "), out);
  CHECK_MESSAGE(contains(out, "specctl: generation canceled"), out);
  CHECK(d.seen().cancels.size() == 1);
}

TEST_CASE("specctl exit codes: 3 no daemon, 2 usage or a refused argument (cli/exit_codes.h)") {
  std::string out;
  const std::string absent = temp_dir() + "/absent.sock";
  CHECK(run_command(specctl() + " --socket " + quoted(absent) + " status 2>&1", &out) == 3);
  CHECK(contains(out, "daemon not running (no socket at " + absent + ")"));
  out.clear();
  CHECK(run_command("SPECD_SOCKET=" + quoted(absent) + " " + specctl() + " generate --prompt hi 2>&1", &out) == 3);

  FakeDaemon d;
  out.clear();
  CHECK(run_command(specctl() + " --socket " + quoted(d.path()) + " generate --prompt hi --decoder nope 2>&1", &out) == 2);
  CHECK(out == "specctl: unknown decoder 'nope'\n");
  out.clear();
  CHECK(run_command(specctl() + " --socket " + quoted(d.path()) + " generate --json --prompt hi --decoder nope 2>&1", &out) == 2);
  const auto j = nlohmann::json::parse(out);  // --json: the error too is a JSON object
  CHECK(j["error"] == "UNKNOWN_DECODER");
  CHECK(j["code"] == SPECD_E_UNKNOWN_DECODER);
  CHECK(j["message"] == "unknown decoder 'nope'");
  for (const char* args : {"", "frobnicate", "generate", "generate --prompt x --max-tokens 0", "generate --prompt x --top-p 2",
                           "generate --prompt-ids 1,x", "generate --prompt x --decoder-opt novalue", "status --bogus 1",
                           "runs --last"}) {
    CAPTURE(args);
    out.clear();
    CHECK(run_command(specctl() + " --socket " + quoted(d.path()) + " " + args + " 2>&1", &out) == 2);
    CHECK(contains(out, "usage: specctl"));
  }
  CHECK(d.seen().generates.size() == 2);  // usage errors never reached the daemon
}
