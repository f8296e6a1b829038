// A refused HTTP connection's last moments: write, shut the write side, drop what arrives, close.
#include "daemon/http_refusal.h"

#include <cstdlib>

namespace specd::daemon {

namespace {

// Owns the stream and its linger timer; freed when both handles have closed.
struct Refusal {
  uv_stream_t* stream = nullptr;
  uv_timer_t timer{};
  uv_write_t write{};
  uv_shutdown_t shutdown{};
  std::string bytes;
  bool has_timer = false;
  int open_handles = 0;
};

void on_closed(uv_handle_t* h) {
  auto* r = static_cast<Refusal*>(h->data);
  if (--r->open_handles > 0) return;
  std::free(r->stream);
  delete r;
}

void close_all(Refusal* r) {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(r->stream))) uv_close(reinterpret_cast<uv_handle_t*>(r->stream), on_closed);
  if (r->has_timer && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&r->timer)))
    uv_close(reinterpret_cast<uv_handle_t*>(&r->timer), on_closed);
}

void drop_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  static char sink[4096];  // what the peer still sends is never looked at
  *buf = uv_buf_init(sink, sizeof sink);
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  if (n < 0) close_all(static_cast<Refusal*>(s->data));  // the peer closed (or reset): done
}

void on_shut(uv_shutdown_t* req, int status) {
  auto* r = static_cast<Refusal*>(req->data);
  if (status < 0 || uv_read_start(r->stream, drop_alloc, on_read) != 0) close_all(r);
}

void on_written(uv_write_t* req, int status) {
  auto* r = static_cast<Refusal*>(req->data);
  if (status < 0 || uv_is_closing(reinterpret_cast<uv_handle_t*>(r->stream))) return close_all(r);
  r->shutdown.data = r;
  if (uv_shutdown(&r->shutdown, r->stream, on_shut) != 0) close_all(r);
}

const char* reason_phrase(int status) {
  switch (status) {
    case 403: return "Forbidden";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace

std::string http_refusal_message(int status, const std::string& json_body) {
  std::string m = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  m += "Content-Type: application/json\r\nContent-Length: " + std::to_string(json_body.size()) + "\r\nConnection: close\r\n";
  if (status == 429 || status == 503) m += "Retry-After: 1\r\n";
  return m + "\r\n" + json_body;
}

void refuse_http_connection(uv_stream_t* stream, std::string response) {
  auto* r = new Refusal;
  r->stream = stream;
  r->bytes = std::move(response);
  stream->data = r;
  r->open_handles = 1;
  r->timer.data = r;
  if (uv_timer_init(stream->loop, &r->timer) == 0) {
    r->has_timer = true;
    r->open_handles = 2;
    uv_timer_start(&r->timer, [](uv_timer_t* t) { close_all(static_cast<Refusal*>(t->data)); }, kHttpRefusalLingerMs, 0);
  }
  r->write.data = r;
  uv_buf_t buf = uv_buf_init(r->bytes.data(), static_cast<unsigned>(r->bytes.size()));
  if (uv_write(&r->write, stream, &buf, 1, on_written) != 0) close_all(r);
}

}  // namespace specd::daemon
