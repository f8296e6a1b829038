// Connection: one client's socket on the loop thread — peer credentials, frames in, queued writes out, a deadline.
//
// A Connection lives in a ConnectionPtr. Dropping the pointer does not free it: it lets queued
// writes drain (uv_shutdown), then lingers reading and discarding until the peer closes or
// kLingerMs pass (so a peer still sending gets our last frame, an Error, rather than a reset),
// closes the handle, and the memory goes in the close callback, so a Connection may be dropped
// from inside its own callbacks.
#pragma once

#include "daemon/frame_codec.h"
#include "daemon/peer_access.h"
#include "kernels/result.h"

#include <uv.h>

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

namespace specd::daemon {

class Connection;

// What the server does with a connection's input; called on the loop thread.
class ConnectionHandler {
 public:
  virtual void on_frame(Connection& c, const std::vector<uint8_t>& frame) = 0;
  // The byte stream broke the framing (oversize, unverifiable, empty): answer and drop c.
  virtual void on_stream_error(Connection& c, const Error& e) = 0;
  // The peer went away (EOF, read or write error): drop c.
  virtual void on_disconnect(Connection& c) = 0;
  // The deadline set with Connection::set_deadline passed.
  virtual void on_deadline(Connection& c) = 0;

 protected:
  ~ConnectionHandler() = default;
};

struct ConnectionCloser {
  void operator()(Connection* c) const;
};
using ConnectionPtr = std::unique_ptr<Connection, ConnectionCloser>;

class Connection {
 public:
  // Accept the pending connection on listener and read its peer's credentials (read_peer_cred).
  // Errors: SPECD_E_IO with libuv's message.
  static Result<ConnectionPtr> accept(uv_stream_t* listener, uint64_t id, uint32_t max_frame_bytes, ConnectionHandler* h);
  Status start_reading();
  // Queue one frame. Returns false (and queues nothing) when the peer is not reading and more
  // than max_queued_bytes already wait: the caller drops the connection.
  bool send(std::vector<uint8_t> frame);

  // Call handler's on_deadline once, ms from now (replacing any earlier deadline); 0 cancels it.
  void set_deadline(uint64_t ms);
  // Milliseconds since the peer last sent a byte or touch() was called.
  uint64_t idle_ms() const;
  // Count now as activity for idle_ms() (e.g. a request just ended).
  void touch();

  uint64_t id() const { return id_; }
  const PeerCred& peer() const { return peer_; }
  bool closing() const { return closing_; }
  size_t queued_bytes() const { return queued_; }
  // At exit: close every connection whose graceful close still waits on a peer that does not
  // read. Only connections may be unclosed named pipes on loop when this is called.
  static void force_close_all(uv_loop_t* loop);

  std::set<uint64_t> requests;  // request_ids in flight on this connection
  bool greeted = false;         // its Hello was answered with Welcome
  static constexpr size_t kMaxQueuedBytes = size_t{64} << 20;
  static constexpr uint64_t kLingerMs = 1000;

 private:
  friend struct ConnectionCloser;
  friend struct std::default_delete<Connection>;
  Connection(uint64_t id, uint32_t max_frame_bytes, ConnectionHandler* h);
  ~Connection() = default;
  void begin_close();
  void close_now();
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* w, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_timer(uv_timer_t* t);
  static void on_closed(uv_handle_t* h);
  static void on_timer_closed(uv_handle_t* h);

  uv_pipe_t pipe_{};  // first, so the handle's address is the Connection's
  uv_shutdown_t shutdown_{};
  uv_timer_t timer_{};  // the deadline while open, the linger bound while closing
  uint64_t id_;
  ConnectionHandler* handler_;
  FrameReader reader_;
  std::vector<char> rbuf_;
  std::vector<uint8_t> frame_;
  PeerCred peer_;
  size_t queued_ = 0;
  uint64_t last_active_ = 0;  // uv_now() when the peer last sent a byte (or touch())
  bool initialized_ = false;
  bool timer_initialized_ = false;
  bool shut_down_ = false;  // uv_shutdown completed: every queued frame left
  bool peer_eof_ = false;   // the peer closed its side while we were closing
  bool closing_ = false;
  bool reading_ = false;
};

}  // namespace specd::daemon
