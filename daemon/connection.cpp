// Connection: accept, peer credentials, the read loop through FrameReader, writes, the deadline and graceful close.
#include "daemon/connection.h"

namespace specd::daemon {
namespace {

struct WriteReq {
  uv_write_t req{};
  std::vector<uint8_t> data;
  size_t size = 0;
};

}  // namespace

Connection::Connection(uint64_t id, uint32_t max_frame_bytes, ConnectionHandler* h)
    : id_(id), handler_(h), reader_(max_frame_bytes), rbuf_(64 * 1024) {
  pipe_.data = this;
}

void ConnectionCloser::operator()(Connection* c) const {
  if (c) c->begin_close();
}

Result<ConnectionPtr> Connection::accept(uv_stream_t* listener, uint64_t id, uint32_t max_frame_bytes,
                                         ConnectionHandler* h) {
  ConnectionPtr c(new Connection(id, max_frame_bytes, h));  // private constructor; freed in on_closed
  if (int rc = uv_pipe_init(listener->loop, &c->pipe_, 0); rc != 0)
    return make_error(SPECD_E_IO, "uv_pipe_init: %s", uv_strerror(rc));
  c->initialized_ = true;
  if (int rc = uv_timer_init(listener->loop, &c->timer_); rc != 0)
    return make_error(SPECD_E_IO, "uv_timer_init: %s", uv_strerror(rc));
  c->timer_initialized_ = true;
  c->timer_.data = c.get();
  c->last_active_ = uv_now(listener->loop);
  if (int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->pipe_)); rc != 0)
    return make_error(SPECD_E_IO, "accept: %s", uv_strerror(rc));
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe_), &fd) == 0) c->peer_ = read_peer_cred(fd);
  return c;
}

Status Connection::start_reading() {
  if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), on_alloc, on_read); rc != 0)
    return make_error(SPECD_E_IO, "uv_read_start: %s", uv_strerror(rc));
  reading_ = true;
  return {};
}

bool Connection::send(std::vector<uint8_t> frame) {
  if (closing_) return true;  // nobody listens any more; dropping the frame is the right outcome
  if (queued_ > kMaxQueuedBytes) return false;
  auto w = std::make_unique<WriteReq>();
  w->size = frame.size();
  w->data = std::move(frame);
  w->req.data = w.get();
  const uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&pipe_), &buf, 1, on_write) != 0) return false;
  queued_ += w->size;
  w.release();  // owned by libuv until on_write
  return true;
}

void Connection::set_deadline(uint64_t ms) {
  if (closing_) return;  // the timer bounds the linger now
  if (ms == 0) uv_timer_stop(&timer_);
  else uv_timer_start(&timer_, on_timer, ms, 0);
}

uint64_t Connection::idle_ms() const {
  const uint64_t now = uv_now(pipe_.loop);
  return now > last_active_ ? now - last_active_ : 0;
}

void Connection::touch() { last_active_ = uv_now(pipe_.loop); }

void Connection::on_timer(uv_timer_t* t) {
  auto* c = static_cast<Connection*>(t->data);
  if (c->closing_) return c->close_now();  // lingered long enough
  c->handler_->on_deadline(*c);
}

void Connection::on_write(uv_write_t* req, int status) {
  std::unique_ptr<WriteReq> w(static_cast<WriteReq*>(req->data));
  // The handle (and so the Connection) outlives every write request: close callbacks run last.
  auto* c = static_cast<Connection*>(req->handle->data);
  c->queued_ -= w->size;
  if (status < 0 && status != UV_ECANCELED && !c->closing_) c->handler_->on_disconnect(*c);
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(h->data);
  *buf = uv_buf_init(c->rbuf_.data(), static_cast<unsigned>(c->rbuf_.size()));
}

void Connection::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(s->data);
  if (c->closing_) {
    // Lingering: what the peer still sends is discarded. Its EOF ends the linger, but frames we
    // still owe it go out first (a peer may half-close and keep reading).
    if (n >= 0) return;
    if (n != UV_EOF || c->shut_down_) return c->close_now();
    c->peer_eof_ = true;
    uv_read_stop(s);
    return;
  }
  if (n > 0) c->last_active_ = uv_now(s->loop);
  if (n < 0) {
    c->handler_->on_disconnect(*c);
    return;
  }
  c->reader_.feed(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(n)));
  // A handler may drop c while it handles a frame; c stays allocated until on_closed, so check.
  while (!c->closing_) {
    auto more = c->reader_.next(&c->frame_);
    if (!more) {
      c->handler_->on_stream_error(*c, more.error());
      return;
    }
    if (!more.value()) return;
    c->handler_->on_frame(*c, c->frame_);
  }
}

void Connection::begin_close() {
  if (closing_) return;
  closing_ = true;
  if (!initialized_) {
    std::unique_ptr<Connection> free_me(this);
    return;
  }
  if (timer_initialized_) uv_timer_stop(&timer_);
  // Keep reading (discarding) so a peer that is still sending — a Hello racing our refusal —
  // does not get EPIPE/ECONNRESET before it has read our Error.
  if (!reading_ && uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), on_alloc, on_read) == 0) reading_ = true;
  // Shutdown first so frames already queued (an Error, a Finished) still reach the peer.
  if (uv_shutdown(&shutdown_, reinterpret_cast<uv_stream_t*>(&pipe_), on_shutdown) != 0) close_now();
}

void Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<Connection*>(req->handle->data);
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(req->handle))) return;  // force_close_all or an error closed it
  c->shut_down_ = true;
  if (status < 0 || c->peer_eof_ || !c->reading_ || !c->timer_initialized_) return c->close_now();
  uv_timer_start(&c->timer_, on_timer, kLingerMs, 0);  // wait for the peer's EOF, but not forever
}

void Connection::close_now() {
  auto* h = reinterpret_cast<uv_handle_t*>(&pipe_);
  if (!uv_is_closing(h)) uv_close(h, on_closed);
}

void Connection::force_close_all(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (h->type == UV_NAMED_PIPE && !uv_is_closing(h)) uv_close(h, on_closed);
      },
      nullptr);
}

// The pipe closed: close the timer, whose close callback frees the Connection.
void Connection::on_closed(uv_handle_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  if (!c->timer_initialized_) {
    std::unique_ptr<Connection> free_me(c);
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer_), on_timer_closed);
}

void Connection::on_timer_closed(uv_handle_t* h) { std::unique_ptr<Connection> free_me(static_cast<Connection*>(h->data)); }

}  // namespace specd::daemon
