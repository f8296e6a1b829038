// Server: loop set-up, accepting connections, access control, signals, watchdog and the drain.
#include "daemon/server.h"

#include "daemon/wire_encode.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace specd::daemon {
namespace {

constexpr int kBacklog = 128;

Server* self_of(uv_handle_t* h) { return static_cast<Server*>(h->data); }

template <class T>
Status check(int rc, const char* what, UvHandle<T>& h) {
  if (rc != 0) return make_error(SPECD_E_IO, "%s: %s", what, uv_strerror(rc));
  h.initialized();
  return {};
}

}  // namespace

Server::Server(const Config& cfg, RunLog& runlog) : cfg_(cfg), runlog_(runlog) {}

Result<std::unique_ptr<Server>> Server::create(const Config& cfg, WorkerOptions opts, RunLog& runlog, ListenSocket sock) {
  std::unique_ptr<Server> s(new Server(cfg, runlog));  // private constructor
  if (int rc = uv_loop_init(&s->loop_); rc != 0) {
    ::close(sock.fd);
    return make_error(SPECD_E_IO, "uv_loop_init: %s", uv_strerror(rc));
  }
  s->loop_live_ = true;
  s->socket_path_ = sock.path;
  SPECD_TRY(s->init_handles(sock));
  auto w = EngineWorker::start(
      std::move(opts), [](void* user) { uv_async_send(static_cast<uv_async_t*>(user)); }, s->async_.get());
  if (!w) return w.error();
  s->worker_ = std::move(w.value());
  SPECD_TRY(s->start_http());
  runlog.set_on_durable([](void* user) { uv_async_send(static_cast<uv_async_t*>(user)); }, s->async_.get());
  return s;
}

Status Server::init_handles(ListenSocket sock) {
  uv_pipe_t* lp = listener_.get();
  if (int rc = uv_pipe_init(&loop_, lp, 0); rc != 0) {
    ::close(sock.fd);
    return make_error(SPECD_E_IO, "uv_pipe_init: %s", uv_strerror(rc));
  }
  listener_.initialized();
  lp->data = this;
  if (int rc = uv_pipe_open(lp, sock.fd); rc != 0) {
    ::close(sock.fd);
    return make_error(SPECD_E_IO, "uv_pipe_open: %s", uv_strerror(rc));
  }
  if (int rc = uv_listen(listener_.stream(), kBacklog, on_connection); rc != 0)
    return make_error(SPECD_E_IO, "listen: %s", uv_strerror(rc));
  SPECD_TRY(check(uv_async_init(&loop_, async_.get(), [](uv_async_t* a) { self_of(reinterpret_cast<uv_handle_t*>(a))->on_engine_events(); }),
                  "uv_async_init", async_));
  async_.get()->data = this;
  auto on_stop = [](uv_signal_t* h, int) {
    Server* s = self_of(reinterpret_cast<uv_handle_t*>(h));
    if (s->drained_) return;
    if (!s->draining_) return s->begin_drain();
    std::fprintf(stderr, "specd: second stop signal: cancelling the runs still going\n");
    s->worker_->cancel_all();
  };
  for (auto* h : {&sigterm_, &sigint_, &sighup_}) {
    SPECD_TRY(check(uv_signal_init(&loop_, h->get()), "uv_signal_init", *h));
    h->get()->data = this;
  }
  SPECD_TRY(check(uv_signal_start(sigterm_.get(), on_stop, SIGTERM), "signal SIGTERM", sigterm_));
  SPECD_TRY(check(uv_signal_start(sigint_.get(), on_stop, SIGINT), "signal SIGINT", sigint_));
  SPECD_TRY(check(uv_signal_start(sighup_.get(), [](uv_signal_t* h, int) {
    Server* s = self_of(reinterpret_cast<uv_handle_t*>(h));
    if (!s->worker_) return;  // drained: nothing left to load decoders for
    if (s->draining_) return (void)std::fprintf(stderr, "specd: SIGHUP while draining: ignored\n");
    std::fprintf(stderr, "specd: SIGHUP: rescanning plugin directories\n");
    s->notify_reloading();
    s->worker_->rescan_plugins();
  }, SIGHUP), "signal SIGHUP", sighup_));
  for (auto* t : {&drain_timer_, &watchdog_}) {
    SPECD_TRY(check(uv_timer_init(&loop_, t->get()), "uv_timer_init", *t));
    t->get()->data = this;
  }
  return {};
}

Server::~Server() {
  runlog_.set_on_durable(nullptr, nullptr);  // before the async handle it wakes goes away
  worker_.reset();  // joins the engine thread before the async handle it wakes goes away
  conns_.clear();
  for (auto* h : {&sigterm_, &sigint_, &sighup_}) h->close();
  // Closing the watchers restored the default actions; from here on a signal is ignored so it
  // cannot kill the process while the run log flushes.
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) std::signal(sig, SIG_IGN);
  drain_timer_.close();
  watchdog_.close();
  async_.close();
  listener_.close();
  final_timer_.close();
  http_timer_.close();
  http_watch_.close();
  if (http_) http_->shutdown();  // its context's timers close in the uv_run below
  if (!loop_live_) return;
  Connection::force_close_all(&loop_);
  uv_run(&loop_, UV_RUN_DEFAULT);  // runs the close callbacks, which free the handles
  if (uv_loop_close(&loop_) != 0) std::fprintf(stderr, "specd: the event loop still had handles at exit\n");
}

int Server::run() {
  if (sd_watchdog_enabled(0, &watchdog_usec_) > 0 && watchdog_usec_ > 0) {
    const uint64_t every_ms = std::max<uint64_t>(1, watchdog_usec_ / 2000);  // twice the rate systemd expects
    uv_timer_start(watchdog_.get(), [](uv_timer_t* t) {
      // Pings stop while the engine is stuck in one step for a whole watchdog period, so systemd
      // restarts a daemon whose loop still runs but whose decoding hangs.
      Server* s = self_of(reinterpret_cast<uv_handle_t*>(t));
      if (!s->worker_ || s->worker_->responsive(static_cast<double>(s->watchdog_usec_) / 1000.0)) sd_notify(0, "WATCHDOG=1");
    }, every_ms, every_ms);
  }
  sd_notify(0, "READY=1");
  notify_status();
  std::fprintf(stderr, "specd: serving on %s\n", socket_path_.empty() ? "the socket passed by systemd" : socket_path_.c_str());
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
  return exit_code_;
}

// systemd's reload protocol (sd_notify(3)): RELOADING=1 with the CLOCK_MONOTONIC time the reload
// began, then READY=1 once it is done (on_engine_events, after the engine thread's rescan), so
// `systemctl reload` returns when the new decoders are there and reports a reload that hangs.
void Server::notify_reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  char line[80];
  std::snprintf(line, sizeof line, "RELOADING=1\nMONOTONIC_USEC=%llu",
                static_cast<unsigned long long>(now.tv_sec) * 1000000ull + static_cast<unsigned long long>(now.tv_nsec) / 1000);
  sd_notify(0, line);
}

void Server::notify_status() {
  char line[160];
  std::snprintf(line, sizeof line, "STATUS=%s%zu connection(s), %zu request(s) in flight", draining_ ? "draining: " : "",
                conns_.size(), requests_.size());
  sd_notify(0, line);
}

void Server::on_connection(uv_stream_t* listener, int status) {
  Server* s = self_of(reinterpret_cast<uv_handle_t*>(listener));
  if (status < 0) {
    std::fprintf(stderr, "specd: accept: %s\n", uv_strerror(status));
    return;
  }
  auto c = Connection::accept(listener, s->next_conn_++, s->cfg_.limits.max_frame_bytes, s);
  if (!c) {
    std::fprintf(stderr, "specd: %s\n", c.error().message.c_str());
    return;
  }
  s->admit_connection(std::move(c.value()));
}

void Server::admit_connection(ConnectionPtr c) {
  const PeerCred& p = c->peer();
  if (static_cast<int32_t>(conns_.size()) >= cfg_.limits.max_connections) {
    c->send(encode_error(0, SPECD_E_LIMIT, "too many connections (limits.max_connections = " +
                                               std::to_string(cfg_.limits.max_connections) + ")"));
    return;  // c drops here: the Error is flushed, then the socket closes
  }
  if (!peer_allowed(cfg_, p)) {
    const std::string why = refusal_reason(p);
    std::fprintf(stderr, "specd: refused a connection from pid %d: %s\n", p.pid, why.c_str());
    c->send(encode_error(0, SPECD_E_ACCESS, why));
    return;  // c drops here: the Error is flushed, then the socket closes
  }
  if (const int32_t n = connections_of(p.uid); limited_uid(p.uid) && n >= cfg_.limits.max_connections_per_uid) {
    c->send(encode_error(0, SPECD_E_LIMIT, "uid " + std::to_string(p.uid) + " already has " + std::to_string(n) +
                                               " connections open (limits.max_connections_per_uid)"));
    return;
  }
  if (Status st = c->start_reading(); !st) {
    std::fprintf(stderr, "specd: %s\n", st.error().message.c_str());
    return;
  }
  c->set_deadline(static_cast<uint64_t>(cfg_.limits.handshake_timeout_ms));
  const uint64_t id = c->id();
  conns_.emplace(id, std::move(c));
}

// Root and the daemon's own user administer it: the per-uid shares do not apply to them.
bool Server::limited_uid(int32_t uid) const { return uid != 0 && uid != static_cast<int32_t>(::geteuid()); }

// Counted when needed rather than kept in step with every open, close and request: connections are
// few (limits.max_connections) and the count is taken once per accept or Generate.
int32_t Server::connections_of(int32_t uid) const {
  int32_t n = 0;
  for (const auto& [id, c] : conns_) n += c->peer().uid == uid;
  return n;
}

int64_t Server::requests_of(int32_t uid) const {
  int64_t n = 0;
  for (const auto& [id, c] : conns_)
    if (c->peer().uid == uid) n += static_cast<int64_t>(c->requests.size());
  return n;
}

// Cancels the connection's requests (their rows are still written when they finish) and closes it.
void Server::drop(Connection& c) {
  if (!c.requests.empty()) worker_->cancel_connection(c.id());
  conns_.erase(c.id());  // the ConnectionPtr's deleter flushes queued frames, then closes
}

void Server::on_stream_error(Connection& c, const Error& e) {
  send(c, encode_error(0, e.code, e.message));
  drop(c);
}

void Server::on_disconnect(Connection& c) { drop(c); }

// Before Hello: the handshake timeout. After it: the idle timeout, which only counts time with no
// request in flight and nothing received.
void Server::on_deadline(Connection& c) {
  const Limits& l = cfg_.limits;
  if (!c.greeted) {
    send(c, encode_error(0, SPECD_E_LIMIT, "no Hello within " + std::to_string(l.handshake_timeout_ms) +
                                               " ms (limits.handshake_timeout_ms)"));
    return drop(c);
  }
  const auto idle_limit = static_cast<uint64_t>(l.idle_timeout_ms);
  if (idle_limit == 0) return;
  if (!c.requests.empty()) return c.set_deadline(idle_limit);
  if (const uint64_t idle = c.idle_ms(); idle < idle_limit) return c.set_deadline(idle_limit - idle);
  send(c, encode_error(0, SPECD_E_LIMIT, "idle for " + std::to_string(l.idle_timeout_ms) +
                                             " ms with no request in flight (limits.idle_timeout_ms)"));
  drop(c);
}

Connection* Server::find_connection(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void Server::send(Connection& c, std::vector<uint8_t> frame) {
  // A peer that stopped reading while its frames pile up is dropped, not buffered without bound.
  if (!c.send(std::move(frame))) drop(c);
}

void Server::begin_drain() {
  draining_ = true;
  std::fprintf(stderr, "specd: stopping: %zu request(s) in flight, %.1f s to finish\n", requests_.size(), cfg_.drain_grace_s);
  sd_notify(0, "STOPPING=1");
  listener_.close();
  if (http_) http_->stop_accepting();
  worker_->stop_admission();
  const auto grace_ms = static_cast<uint64_t>(cfg_.drain_grace_s * 1000.0);
  uv_timer_start(drain_timer_.get(), [](uv_timer_t* t) {
    Server* s = self_of(reinterpret_cast<uv_handle_t*>(t));
    std::fprintf(stderr, "specd: drain grace over: cancelling %zu request(s)\n", s->requests_.size());
    s->worker_->cancel_all();
  }, grace_ms, 0);
  maybe_finish_drain();
}

// Once every request has its Finished/Error and row: flush the run log, close everything; the
// loop then ends because no handle is left.
void Server::maybe_finish_drain() {
  if (!draining_ || drained_ || !requests_.empty() || !closing_.empty()) {
    if (draining_) notify_status();
    return;
  }
  drained_ = true;
  runlog_.set_on_durable(nullptr, nullptr);
  runlog_.flush();
  worker_.reset();
  conns_.clear();
  // The signal handlers stay until exit (a late SIGTERM must not kill the flush) but no longer
  // keep the loop alive.
  for (auto* h : {&sigterm_, &sigint_, &sighup_}) uv_unref(h->handle());
  drain_timer_.close();
  watchdog_.close();
  async_.close();
  http_finish_drain();
  // A peer that never reads would hold its graceful close open forever: cut it after a moment.
  // The timer is unreferenced, so it does not keep the loop alive when everything closed in time.
  if (uv_timer_init(&loop_, final_timer_.get()) == 0) {
    final_timer_.initialized();
    uv_timer_start(final_timer_.get(), [](uv_timer_t* t) { Connection::force_close_all(t->loop); }, 2000, 0);
    uv_unref(final_timer_.handle());
  }
}

}  // namespace specd::daemon
