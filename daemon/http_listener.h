// HttpListener: HTTP/1.1 on the daemon's libuv loop, by libh2o (Debian's build on libuv), which
// parses requests, keeps connections alive, bounds body sizes (413) and times out slow or idle
// clients. This file only binds listeners, learns who is at the other end of each connection and
// hands every request to an HttpHandler as an HttpExchange.
//
// Threading: everything runs on the loop thread that start() was given.
#pragma once

#include "daemon/http_address.h"
#include "daemon/peer_access.h"
#include "kernels/result.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct st_h2o_req_t;

namespace specd::daemon {

// Who sent a request: a TCP client (address) or a Unix-socket peer (credentials), and whether the
// Unix socket's peer checks admitted it (refusal says why not).
struct HttpPeer {
  bool unix_socket = false;
  std::string address;   // "127.0.0.1:50312" or the socket path
  PeerCred cred;         // Unix socket only; uid/pid -1 for TCP
  std::string refusal;   // "" when admitted
  int fd = -1;           // the connection's socket, only for client_gone()'s liveness check
};

class HttpListener;

// One request and its response. Lives in the request's own memory pool: it is valid from
// HttpHandler::on_http_request until HttpHandler::on_http_gone, which h2o triggers once the response
// is sent or the client went away.
class HttpExchange {
 public:
  uint64_t id() const { return id_; }
  std::string_view method() const;
  std::string_view path() const;    // without the query string
  std::string_view body() const;
  std::string header(std::string_view name) const;  // name in lower case; "" when absent
  const HttpPeer& peer() const { return *peer_; }

  // A whole response (content-length set); ignored once a response has started.
  void respond(int status, std::string_view content_type, std::string body);
  // A 200 streamed response (chunked); then write() its bytes, the last with last = true.
  void start_stream(std::string_view content_type);
  void write(std::string bytes, bool last);
  bool started() const { return started_; }
  // True once the client closed or reset its connection, seen without reading from it: h2o does not
  // read while a request is being answered, so a client leaving before its whole response would go
  // unnoticed until the response is written. No errors.
  bool client_gone() const;

 private:
  friend class HttpListener;
  struct Generator;  // h2o's generator callbacks, pointing back here
  HttpExchange(st_h2o_req_t* req, uint64_t id, const HttpPeer* peer, const bool* draining);
  void flush();
  static void on_proceed(void* gen, st_h2o_req_t* req);
  static void on_stop(void* gen, st_h2o_req_t* req);

  st_h2o_req_t* req_;
  uint64_t id_;
  const HttpPeer* peer_;        // owned by the listener's connection record, which outlives the request
  const bool* draining_;        // the listener's drain flag: then the connection closes after this response
  bool started_ = false;
  bool streaming_ = false;
  bool sending_ = false;        // an h2o_send is in flight: the next waits for proceed
  bool last_queued_ = false;    // the caller wrote its last bytes
  bool final_sent_ = false;
  bool stopped_ = false;        // the client went away
  std::string pending_, inflight_;
  void* generator_ = nullptr;   // Generator, allocated in the request's pool
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // A complete request (head and body) arrived; answer now or later through x.
  virtual void on_http_request(HttpExchange& x) = 0;
  // x is about to be freed: its response was sent, or its client disconnected first.
  virtual void on_http_gone(HttpExchange& x) = 0;
};

struct HttpListenOptions {
  std::vector<HttpAddress> addresses;
  uint64_t max_body_bytes = uint64_t{8} << 20;
  uint64_t request_timeout_ms = 10000;
  uint32_t unix_socket_mode = 0660;
  // Unix-socket peers: "" to admit, else why not (the handler answers their requests with 403).
  std::function<std::string(const PeerCred&)> check_peer;
  // At accept, before h2o sees the connection: 0 to serve it, else the HTTP status of a refusal
  // whose JSON body it sets (the listener writes it and closes). Told the peer and how many HTTP
  // connections are open, in all and (Unix socket) from the peer's uid. Unset: every one is served.
  std::function<int(const HttpPeer& peer, int64_t open, int64_t open_same_uid, std::string* body)> admit;
};

class HttpListener {
 public:
  // Bind and listen on every address (a stale Unix socket file is replaced). Errors: SPECD_E_IO
  // naming the address (in use, permission denied, cannot bind).
  static Result<std::unique_ptr<HttpListener>> start(uv_loop_t* loop, HttpListenOptions opts, HttpHandler* handler);
  // Frees the memory; call shutdown() first and let the loop run its close callbacks in between
  // (without that, the memory is left to the process exit rather than freed under libuv's feet).
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Drain: stop accepting and let open connections end after their current response (no more
  // keep-alive). No errors.
  void stop_accepting();
  // HTTP connections open now (served ones; a refused one is not counted).
  int64_t connections() const;
  // Connections refused by HttpListenOptions::admit so far.
  int64_t refused() const;
  // The end: stop accepting and close h2o's context (its timers close on the loop). Connections
  // still open keep the context alive until the process exits. Idempotent; no errors.
  void shutdown();

 private:
  HttpListener() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool leaked_ = false;
};

}  // namespace specd::daemon
