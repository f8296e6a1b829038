// HttpListener: libuv listeners feeding accepted sockets to h2o, and the per-request bridge.
//
// Who is at the other end is learnt once per connection, at accept (SO_PEERCRED on the Unix
// socket, the address on TCP), and found again for each request through h2o's socket: the
// socket's on_close hook, which h2o leaves to the accepting code, forgets the record.
#include "daemon/http_listener.h"

#include "daemon/http_refusal.h"

#include <h2o.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <unordered_map>

namespace specd::daemon {

namespace {

constexpr int kBacklog = 128;

void free_handle(uv_handle_t* h) { std::free(h); }

}  // namespace

struct HttpListener::Impl {
  struct Handler {
    h2o_handler_t super;
    Impl* impl;
  };
  struct ConnRecord {
    HttpPeer peer;
    h2o_socket_t* sock = nullptr;
    Impl* impl = nullptr;
  };
  uv_loop_t* loop = nullptr;
  HttpListenOptions opts;
  HttpHandler* handler = nullptr;
  h2o_globalconf_t globalconf{};
  h2o_context_t ctx{};
  h2o_accept_ctx_t accept_ctx{};
  bool ctx_live = false, shut_down = false;
  bool draining = false;  // responses from now on close their connection (no keep-alive)
  std::vector<std::pair<uv_stream_t*, HttpAddress>> listeners;
  std::unordered_map<h2o_socket_t*, ConnRecord*> conns;
  HttpPeer unknown_peer;  // a request whose socket is not in conns (not expected; refused like a stranger)
  uint64_t next_id = 0;
  int64_t refused = 0;

  static int on_req(h2o_handler_t* self, h2o_req_t* req);
  static void on_accept(uv_stream_t* listener, int status);
  static void on_socket_close(void* data);
  static void dispose_exchange(void* p);
  Status listen_on(const HttpAddress& a);
};

int HttpListener::Impl::on_req(h2o_handler_t* self, h2o_req_t* req) {
  Impl* impl = reinterpret_cast<Handler*>(self)->impl;
  h2o_socket_t* sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : nullptr;
  auto it = impl->conns.find(sock);
  const HttpPeer* peer = it != impl->conns.end() ? &it->second->peer : &impl->unknown_peer;
  void* mem = h2o_mem_alloc_shared(&req->pool, sizeof(HttpExchange) + sizeof(Impl*), &Impl::dispose_exchange);
  auto* x = new (mem) HttpExchange(req, ++impl->next_id, peer, &impl->draining);
  *reinterpret_cast<Impl**>(static_cast<char*>(mem) + sizeof(HttpExchange)) = impl;  // for dispose_exchange
  impl->handler->on_http_request(*x);
  return 0;
}

void HttpListener::Impl::dispose_exchange(void* p) {
  auto* x = static_cast<HttpExchange*>(p);
  Impl* impl = *reinterpret_cast<Impl**>(static_cast<char*>(p) + sizeof(HttpExchange));
  impl->handler->on_http_gone(*x);
  x->~HttpExchange();
}

void HttpListener::Impl::on_accept(uv_stream_t* listener, int status) {
  auto* impl = static_cast<Impl*>(listener->data);
  if (status < 0) {
    std::fprintf(stderr, "specd: HTTP accept: %s\n", uv_strerror(status));
    return;
  }
  const bool unix_socket = listener->type == UV_NAMED_PIPE;
  auto* stream = static_cast<uv_stream_t*>(std::malloc(unix_socket ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t)));
  if (!stream) return;
  const int rc = unix_socket ? uv_pipe_init(impl->loop, reinterpret_cast<uv_pipe_t*>(stream), 0)
                             : uv_tcp_init(impl->loop, reinterpret_cast<uv_tcp_t*>(stream));
  if (rc != 0) return std::free(stream);
  if (uv_accept(listener, stream) != 0) return uv_close(reinterpret_cast<uv_handle_t*>(stream), free_handle);
  // Tokens go out as small chunks: without TCP_NODELAY, Nagle holds each one back until the client's
  // (delayed, up to 40 ms) ACK of the one before.
  if (!unix_socket) uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1);
  auto* rec = new ConnRecord;
  rec->impl = impl;
  rec->peer.unix_socket = unix_socket;
  if (unix_socket) {
    uv_os_fd_t fd = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(stream), &fd);
    rec->peer.cred = read_peer_cred(fd);
    if (impl->opts.check_peer) rec->peer.refusal = impl->opts.check_peer(rec->peer.cred);
    for (const auto& [l, a] : impl->listeners)
      if (l == listener) rec->peer.address = a.path;
  } else {
    sockaddr_storage ss{};
    int len = sizeof ss;
    char host[64] = "?";
    if (uv_tcp_getpeername(reinterpret_cast<uv_tcp_t*>(stream), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      int port = 0;
      if (ss.ss_family == AF_INET6) {
        uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), host, sizeof host);
        port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
      } else {
        uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), host, sizeof host);
        port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      }
      rec->peer.address = std::string(host) + ":" + std::to_string(port);
    }
  }
  if (impl->opts.admit) {
    int64_t same_uid = 0;
    if (unix_socket)
      for (const auto& [s, other] : impl->conns) same_uid += other->peer.unix_socket && other->peer.cred.uid == rec->peer.cred.uid;
    std::string body;
    if (const int status = impl->opts.admit(rec->peer, static_cast<int64_t>(impl->conns.size()), same_uid, &body); status != 0) {
      delete rec;
      ++impl->refused;
      return refuse_http_connection(stream, http_refusal_message(status, body));
    }
  }
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream), &fd) == 0) rec->peer.fd = fd;
  h2o_socket_t* sock = h2o_uv_socket_create(stream, free_handle);
  rec->sock = sock;
  sock->on_close.cb = &Impl::on_socket_close;
  sock->on_close.data = rec;
  impl->conns.emplace(sock, rec);
  h2o_accept(&impl->accept_ctx, sock);
}

void HttpListener::Impl::on_socket_close(void* data) {
  auto* rec = static_cast<ConnRecord*>(data);
  rec->impl->conns.erase(rec->sock);
  delete rec;
}

Status HttpListener::Impl::listen_on(const HttpAddress& a) {
  uv_stream_t* stream = nullptr;
  int rc = 0;
  const char* step = "bind";
  if (a.unix_socket) {
    struct stat st{};
    if (::lstat(a.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(a.path.c_str());  // a stale socket
    auto* p = static_cast<uv_pipe_t*>(std::malloc(sizeof(uv_pipe_t)));
    if (!p || uv_pipe_init(loop, p, 0) != 0) return std::free(p), make_error(SPECD_E_IO, "HTTP %s: cannot make a pipe", a.text.c_str());
    stream = reinterpret_cast<uv_stream_t*>(p);
    rc = uv_pipe_bind(p, a.path.c_str());
    if (rc == 0 && ::chmod(a.path.c_str(), opts.unix_socket_mode) != 0) rc = -errno, step = "chmod";
  } else {
    auto* t = static_cast<uv_tcp_t*>(std::malloc(sizeof(uv_tcp_t)));
    if (!t || uv_tcp_init(loop, t) != 0) return std::free(t), make_error(SPECD_E_IO, "HTTP %s: cannot make a TCP socket", a.text.c_str());
    stream = reinterpret_cast<uv_stream_t*>(t);
    sockaddr_storage ss{};
    const bool v6 = a.host.find(':') != std::string::npos;
    rc = v6 ? uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&ss))
            : uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(&ss));
    if (rc == 0) rc = uv_tcp_bind(t, reinterpret_cast<const sockaddr*>(&ss), v6 ? UV_TCP_IPV6ONLY : 0);
  }
  stream->data = this;
  if (rc == 0) step = "listen", rc = uv_listen(stream, kBacklog, &Impl::on_accept);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), free_handle);
    return make_error(SPECD_E_IO, "HTTP: cannot %s %s: %s", step, a.text.c_str(), uv_strerror(rc));
  }
  listeners.emplace_back(stream, a);
  return {};
}

Result<std::unique_ptr<HttpListener>> HttpListener::start(uv_loop_t* loop, HttpListenOptions opts, HttpHandler* handler) {
  std::unique_ptr<HttpListener> l(new HttpListener);
  l->impl_ = std::make_unique<Impl>();
  Impl& m = *l->impl_;
  m.loop = loop;
  m.opts = std::move(opts);
  m.handler = handler;
  m.unknown_peer.refusal = "the daemon could not tell who is connected";
  h2o_config_init(&m.globalconf);
  m.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("specd"));
  m.globalconf.max_request_entity_size = m.opts.max_body_bytes;
  m.globalconf.http1.req_timeout = m.opts.request_timeout_ms;
  m.globalconf.http1.upgrade_to_http2 = 0;
  h2o_hostconf_t* host = h2o_config_register_host(&m.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t* path = h2o_config_register_path(host, "/", 0);
  auto* h = reinterpret_cast<Impl::Handler*>(h2o_create_handler(path, sizeof(Impl::Handler)));
  h->super.on_req = &Impl::on_req;
  h->impl = &m;
  h2o_context_init(&m.ctx, loop, &m.globalconf);
  m.ctx_live = true;
  m.accept_ctx.ctx = &m.ctx;
  m.accept_ctx.hosts = m.globalconf.hosts;
  for (const HttpAddress& a : m.opts.addresses) {
    if (Status st = m.listen_on(a); !st) {
      l->shutdown();
      return st.error();
    }
  }
  return l;
}

void HttpListener::stop_accepting() {
  Impl& m = *impl_;
  for (auto& [stream, a] : m.listeners) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), free_handle);
    if (a.unix_socket) ::unlink(a.path.c_str());
  }
  m.listeners.clear();
  m.draining = true;
  if (m.ctx_live) h2o_context_request_shutdown(&m.ctx);
}

int64_t HttpListener::connections() const { return static_cast<int64_t>(impl_->conns.size()); }

int64_t HttpListener::refused() const { return impl_->refused; }

void HttpListener::shutdown() {
  Impl& m = *impl_;
  if (m.shut_down) return;
  m.shut_down = true;
  stop_accepting();
  if (!m.conns.empty()) {
    // h2o's connections point into the context: with some still open it must stay, for the exit.
    std::fprintf(stderr, "specd: %zu HTTP connection(s) still open at exit\n", m.conns.size());
    leaked_ = true;
    return;
  }
  // request_shutdown armed HTTP/2's GOAWAY re-send; no HTTP/2 connection exists here (no TLS, no
  // upgrade), and the context cannot be disposed with a timer still armed.
  if (h2o_timeout_is_linked(&m.ctx.http2._graceful_shutdown_timeout)) h2o_timeout_unlink(&m.ctx.http2._graceful_shutdown_timeout);
  h2o_context_dispose(&m.ctx);
  m.ctx_live = false;
  h2o_config_dispose(&m.globalconf);
}

HttpListener::~HttpListener() {
  // The context's timers are closed by shutdown() and freed by the loop's close callbacks, which
  // have run by now; without shutdown() (or with connections left open) the memory stays behind.
  if (impl_ && (!impl_->shut_down || leaked_)) (void)impl_.release();
}

}  // namespace specd::daemon
