// Session: handshake, starting requests, the poll loop, the blocking calls, and ending every request exactly once.
#include "clients/session.h"

#include "clients/message_decode.h"
#include "clients/message_encode.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <new>

namespace specd::clients {
namespace {

using Clock = std::chrono::steady_clock;

// Time left before deadline in ms for a wait (-1: no deadline), 0 once it has passed.
int32_t remaining_ms(const std::optional<Clock::time_point>& deadline) {
  if (!deadline) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int32_t>(std::min<long long>(left, INT32_MAX));
}

std::optional<Clock::time_point> deadline_after(int32_t timeout_ms) {
  if (timeout_ms < 0) return std::nullopt;
  return Clock::now() + std::chrono::milliseconds(timeout_ms);
}

// A generation whose outcome a blocking call collects.
struct SyncOutcome {
  bool done = false;
  int rc = SPECD_OK;
  std::string message;
  std::optional<Finished> result;
};

class SyncGeneration final : public Generation {
 public:
  explicit SyncGeneration(SyncOutcome* out) : out_(out) {}
  void on_token(const TokenEventView&) override {}
  void on_done(int rc, const std::string& message, const Finished* result) override {
    out_->rc = rc;
    out_->message = message;
    if (result) out_->result = *result;
    out_->done = true;
  }

 private:
  SyncOutcome* out_;
};

}  // namespace

Result<std::unique_ptr<Session>> Session::connect(const SessionOptions& opts) {
  auto conn = Connection::open(opts.socket_path, opts.timeout_ms, opts.max_frame_bytes);
  if (!conn) return conn.error();
  std::unique_ptr<Session> s(new Session(std::move(conn.value()), opts));  // private constructor
  SPECD_TRY(s->handshake());
  return s;
}

Result<void> Session::handshake() {
  conn_.queue(encode_hello(opts_.client_name));
  const auto deadline = deadline_after(opts_.timeout_ms);
  std::optional<Error> refused;
  bool welcomed = false;
  const auto on_frame = [&](const wire::Envelope& env) {
    if (env.body_type() == wire::Body::Welcome) {
      welcome_ = decode_welcome(*env.body_as_Welcome());
      welcomed = true;
    } else if (env.body_type() == wire::Body::Error) {
      refused = decode_error(*env.body_as_Error());
    } else {
      refused =
          Error{SPECD_E_PROTOCOL, std::string("expected Welcome from the daemon, got ") + body_name(env.body_type())};
    }
    return false;  // anything after the answer stays buffered for poll()
  };
  while (!welcomed && !refused) {
    if (auto sent = conn_.flush(); !sent) {
      // A daemon that refused us (access, connection limit) may have closed before our Hello
      // went out; the Error it sent first is still readable and says why.
      (void)conn_.receive(on_frame);
      if (refused) return *refused;
      return sent.error();
    }
    const int32_t wait = remaining_ms(deadline);
    if (wait == 0 && deadline) {
      return Error{SPECD_E_IO,
                   "the daemon did not answer the handshake within " + std::to_string(opts_.timeout_ms) + " ms"};
    }
    auto ready = conn_.wait(wait);
    if (!ready) return ready.error();
    if (ready.value()) SPECD_TRY(conn_.receive(on_frame));
  }
  if (refused) return *refused;
  // Frames that came with the Welcome stay buffered where epoll cannot see them: make the event
  // fd readable so an application's own loop calls poll().
  if (conn_.has_input()) conn_.wake();
  if (welcome_.protocol_version != kProtocolVersion) {
    return Error{SPECD_E_VERSION, "the daemon speaks protocol version " + std::to_string(welcome_.protocol_version) +
                                      "; this client speaks version " + std::to_string(kProtocolVersion)};
  }
  return {};
}

Result<void> Session::usable(const char* what) const {
  if (closed_) return Error{SPECD_E_INVALID_ARG, std::string(what) + ": the client is closing"};
  if (broken_) return *broken_;
  return {};
}

Result<void> Session::check_frame_size(size_t bytes) const {
  if (welcome_.max_frame_bytes != 0 && bytes > welcome_.max_frame_bytes) {
    return Error{SPECD_E_LIMIT, "the request is " + std::to_string(bytes) +
                                    " bytes; the daemon accepts frames of at most " +
                                    std::to_string(welcome_.max_frame_bytes) + " bytes"};
  }
  return {};
}

Result<void> Session::start(std::unique_ptr<Generation> g, const GenerateRequest& req) {
  SPECD_TRY(usable("generate"));
  if (deferred_failure_) return *deferred_failure_;
  const uint64_t id = table_.next_id();
  const std::vector<uint8_t> frame = encode_generate(id, req);
  SPECD_TRY(check_frame_size(frame.size()));
  g->wake_ = &conn_;
  // Queued before it is registered: if registering throws, the daemon's replies to the orphan
  // frame find no request and are dropped, and no on_done is owed.
  conn_.queue(frame);
  table_.add(id, Pending{std::move(g), nullptr});
  // Sent now when the socket takes it, so a caller's own loop need not poll first. A failure
  // cannot end requests here (their callbacks would run inside this call): the next poll does.
  if (auto sent = conn_.flush(); !sent) deferred_failure_ = sent.error();
  return {};
}

Result<int> Session::poll(int32_t timeout_ms) {
  if (in_callback()) return Error{SPECD_E_INVALID_ARG, "specd_client_poll cannot be called from inside a callback"};
  SPECD_TRY(usable("poll"));
  int callbacks = 0;
  // A daemon that closed the connection may have said why first (an Error for request 0, or the
  // requests' own answers): dispatch what is still readable before failing with the send error.
  const auto lost = [&](const Error& e) -> Result<int> {
    (void)conn_.receive([&](const wire::Envelope& env) { return dispatch(env, &callbacks); });
    if (broken_) return *broken_;
    return fail(e);
  };
  if (deferred_failure_) return lost(*deferred_failure_);
  try {
    if (auto sent = conn_.flush(); !sent) return lost(sent.error());
    auto ready = conn_.wait(conn_.has_input() ? 0 : timeout_ms);
    if (!ready) return fail(ready.error());
    if (!ready.value() && !conn_.has_input()) return 0;
    conn_.clear_wake();
    auto received = conn_.receive([&](const wire::Envelope& env) { return dispatch(env, &callbacks); });
    if (broken_) return *broken_;  // a dispatched frame broke the session
    if (!received) return fail(received.error());
    send_cancels();  // after dispatch, so cancels asked for inside callbacks leave in this poll
    if (deferred_failure_) return lost(*deferred_failure_);
    if (auto sent = conn_.flush(); !sent) return lost(sent.error());
  } catch (const std::bad_alloc&) {
    return fail(Error{SPECD_E_NOMEM, "out of memory while handling the daemon's replies"});
  } catch (const std::exception& e) {
    return fail(Error{SPECD_E_INTERNAL, std::string("client library error: ") + e.what()});
  }
  return callbacks;
}

void Session::send_cancels() {
  for (const uint64_t id : table_.cancels_to_send()) conn_.queue(encode_cancel(id));
}

Result<void> Session::call(const std::function<std::vector<uint8_t>(uint64_t)>& encode, int expected_body,
                           const char* what, const std::function<void(const wire::Envelope&)>& on_reply) {
  if (in_callback()) return Error{SPECD_E_INVALID_ARG, std::string(what) + " cannot be called from inside a callback"};
  SPECD_TRY(usable(what));
  const uint64_t id = table_.next_id();
  const std::vector<uint8_t> frame = encode(id);
  SPECD_TRY(check_frame_size(frame.size()));
  Waiter waiter;
  waiter.expected_body = expected_body;
  waiter.on_reply = on_reply;
  conn_.queue(frame);  // before registering, as in start()
  table_.add(id, Pending{nullptr, &waiter});
  const auto deadline = deadline_after(opts_.timeout_ms);
  while (!waiter.done) {
    const int32_t wait = remaining_ms(deadline);
    if (wait == 0 && deadline) {
      // A late reply finds no request and is dropped.
      (void)table_.take(id);
      return Error{SPECD_E_IO, "no " + std::string(what) + " reply from the daemon within " +
                                   std::to_string(opts_.timeout_ms) + " ms"};
    }
    auto polled = poll(wait);
    // A failed poll has already completed the waiter with its error.
    if (!polled && !waiter.done) return polled.error();
  }
  if (waiter.error) return *waiter.error;
  return {};
}

Result<Finished> Session::generate(const GenerateRequest& req) {
  if (in_callback()) return Error{SPECD_E_INVALID_ARG, "specd_generate_sync cannot be called from inside a callback"};
  SyncOutcome outcome;
  SPECD_TRY(start(std::make_unique<SyncGeneration>(&outcome), req));
  while (!outcome.done) {
    // A failed poll has already ended the generation (outcome.done) with its error.
    auto polled = poll(-1);
    if (!polled && !outcome.done) return polled.error();
  }
  if (outcome.rc != SPECD_OK) return Error{outcome.rc, outcome.message};
  return std::move(*outcome.result);
}

Result<StatusInfo> Session::status() {
  StatusInfo info;
  SPECD_TRY(call([](uint64_t id) { return encode_status_request(id); }, static_cast<int>(wire::Body::StatusReply),
                 "status", [&](const wire::Envelope& env) { info = decode_status(*env.body_as_StatusReply()); }));
  return info;
}

Result<RunList> Session::list_runs(const RunsQuery& query) {
  RunList list;
  SPECD_TRY(call([&](uint64_t id) { return encode_list_runs(id, query); }, static_cast<int>(wire::Body::RunList),
                 "list runs", [&](const wire::Envelope& env) { list = decode_run_list(*env.body_as_RunList()); }));
  return list;
}

Error Session::fail(const Error& e) {
  if (!broken_) broken_ = e;
  conn_.close();
  for (Pending& p : table_.take_all()) {
    if (p.gen) {
      ++callback_depth_;  // on_done must not throw: the ABI edge catches what its callbacks throw
      p.gen->on_done(broken_->code, broken_->message, nullptr);
      --callback_depth_;
    } else {
      p.waiter->error = *broken_;
      p.waiter->done = true;
    }
  }
  return *broken_;
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  conn_.close();
  const Error canceled{SPECD_E_CANCELED, "the client was closed"};
  for (Pending& p : table_.take_all()) {
    if (p.gen) {
      ++callback_depth_;
      p.gen->on_done(canceled.code, canceled.message, nullptr);
      --callback_depth_;
    } else {
      p.waiter->error = canceled;
      p.waiter->done = true;
    }
  }
}

}  // namespace specd::clients
