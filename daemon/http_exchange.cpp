// HttpExchange: one h2o request and its response — a whole body, or a stream sent one h2o_send at a
// time as h2o asks for more (proceed), and a look at whether its client is still there.
#include "daemon/http_listener.h"

#include <h2o.h>

#include <poll.h>

namespace specd::daemon {

struct HttpExchange::Generator {
  h2o_generator_t super;
  HttpExchange* self;
};

namespace {

const char* reason_of(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

void add_header(h2o_req_t* req, const h2o_token_t* token, std::string_view value) {
  const h2o_iovec_t v = h2o_strdup(&req->pool, value.data(), value.size());
  h2o_add_header(&req->pool, &req->res.headers, token, nullptr, v.base, v.len);
}

}  // namespace

HttpExchange::HttpExchange(h2o_req_t* req, uint64_t id, const HttpPeer* peer, const bool* draining)
    : req_(req), id_(id), peer_(peer), draining_(draining) {}

std::string_view HttpExchange::method() const { return {req_->method.base, req_->method.len}; }

std::string_view HttpExchange::path() const {
  const size_t n = req_->query_at != SIZE_MAX ? req_->query_at : req_->path.len;
  return {req_->path.base, n};
}

std::string_view HttpExchange::body() const { return req_->entity.base ? std::string_view(req_->entity.base, req_->entity.len) : ""; }

std::string HttpExchange::header(std::string_view name) const {
  for (size_t i = 0; i < req_->headers.size; ++i) {
    const h2o_header_t& h = req_->headers.entries[i];
    if (std::string_view(h.name->base, h.name->len) == name) return std::string(h.value.base, h.value.len);
  }
  return "";
}

// POLLRDHUP: the peer shut down its sending side (an HTTP client does that only when it leaves);
// POLLHUP/POLLERR: the connection is gone. Nothing is read, so pipelined bytes stay for h2o.
bool HttpExchange::client_gone() const {
  if (stopped_) return true;
  if (peer_->fd < 0) return false;
  pollfd p{peer_->fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void HttpExchange::respond(int status, std::string_view content_type, std::string body) {
  if (started_ || stopped_) return;
  started_ = true;
  final_sent_ = true;
  if (*draining_) req_->http1_is_persistent = 0;
  req_->res.status = status;
  req_->res.reason = reason_of(status);
  add_header(req_, H2O_TOKEN_CONTENT_TYPE, content_type);
  inflight_ = std::move(body);  // lives until the exchange is freed, after the bytes went out
  req_->res.content_length = inflight_.size();
  static h2o_generator_t no_more = {nullptr, nullptr};  // one final send: nothing to proceed or stop
  h2o_start_response(req_, &no_more);
  h2o_iovec_t buf = h2o_iovec_init(inflight_.data(), inflight_.size());
  h2o_send(req_, &buf, 1, H2O_SEND_STATE_FINAL);  // last: h2o may free this exchange once it is sent
}

void HttpExchange::start_stream(std::string_view content_type) {
  if (started_ || stopped_) return;
  started_ = streaming_ = true;
  if (*draining_) req_->http1_is_persistent = 0;
  req_->res.status = 200;
  req_->res.reason = "OK";
  add_header(req_, H2O_TOKEN_CONTENT_TYPE, content_type);
  add_header(req_, H2O_TOKEN_CACHE_CONTROL, "no-cache");
  auto* g = static_cast<Generator*>(h2o_mem_alloc_pool(&req_->pool, sizeof(Generator)));
  g->super.proceed = reinterpret_cast<void (*)(h2o_generator_t*, h2o_req_t*)>(&HttpExchange::on_proceed);
  g->super.stop = reinterpret_cast<void (*)(h2o_generator_t*, h2o_req_t*)>(&HttpExchange::on_stop);
  g->self = this;
  generator_ = g;
  h2o_start_response(req_, &g->super);
}

void HttpExchange::write(std::string bytes, bool last) {
  if (!streaming_ || last_queued_) return;
  pending_ += bytes;
  last_queued_ = last;
  flush();
}

// h2o takes one send at a time: the next waits for proceed. Called last wherever it is called, since
// a final send may end the exchange.
void HttpExchange::flush() {
  if (sending_ || final_sent_ || stopped_) return;
  if (pending_.empty() && !last_queued_) return;
  inflight_.swap(pending_);
  pending_.clear();
  final_sent_ = last_queued_;
  sending_ = !final_sent_;
  h2o_iovec_t buf = h2o_iovec_init(inflight_.data(), inflight_.size());
  h2o_send(req_, &buf, inflight_.empty() ? 0 : 1, final_sent_ ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

void HttpExchange::on_proceed(void* gen, h2o_req_t*) {
  HttpExchange* x = static_cast<Generator*>(gen)->self;
  x->sending_ = false;
  x->inflight_.clear();
  x->flush();
}

void HttpExchange::on_stop(void* gen, h2o_req_t*) { static_cast<Generator*>(gen)->self->stopped_ = true; }

}  // namespace specd::daemon
