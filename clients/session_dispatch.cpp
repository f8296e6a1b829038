// Session::dispatch: routes each verified frame from the daemon to its request and ends requests exactly once.
#include "clients/error_text.h"
#include "clients/message_decode.h"
#include "clients/session.h"

namespace specd::clients {
namespace {

// The on_done code for a Finished: the daemon's own verdict on how the request ended.
int finished_rc(const std::string& reason) {
  if (reason == "cancel") return SPECD_E_CANCELED;
  // Failures should come as Error frames, which carry a code; a bare "error" reason has none.
  if (reason == "error") return SPECD_E_INTERNAL;
  return SPECD_OK;
}

std::string finished_message(int rc) {
  if (rc == SPECD_E_CANCELED) return "generation canceled";
  if (rc != SPECD_OK) return "the daemon ended the generation with finish reason 'error'";
  return "";
}

// Keeps callback_depth_ right even if a callback throws.
struct CallbackScope {
  explicit CallbackScope(int* depth) : depth_(depth) { ++*depth_; }
  ~CallbackScope() { --*depth_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;
  int* depth_;
};

}  // namespace

bool Session::dispatch(const wire::Envelope& env, int* callbacks) {
  const uint64_t id = env.request_id();
  const wire::Body type = env.body_type();
  if (id == 0) {
    // Request 0 is the connection itself: an Error there (e.g. a frame the daemon refused) ends it.
    if (type == wire::Body::Error) {
      Error e = decode_error(*env.body_as_Error());
      if (e.message.empty()) e.message = error_message(e.code);
      fail(Error{e.code, "the daemon closed the session: " + e.message});
    } else {
      fail(Error{SPECD_E_PROTOCOL, std::string("the daemon sent ") + body_name(type) + " outside any request"});
    }
    return false;
  }
  Pending* p = table_.find(id);
  // No such request: a late reply to a blocking call that timed out. Nothing waits for it.
  if (!p) return true;
  if (p->waiter) {
    Waiter* w = p->waiter;
    (void)table_.take(id);
    if (static_cast<int>(type) == w->expected_body) {
      w->on_reply(env);
    } else if (type == wire::Body::Error) {
      Error e = decode_error(*env.body_as_Error());
      if (e.message.empty()) e.message = error_message(e.code);
      w->error = std::move(e);
    } else {
      w->error = Error{SPECD_E_PROTOCOL, std::string("the daemon answered with ") + body_name(type) +
                                             ", expected " + body_name(static_cast<wire::Body>(w->expected_body))};
    }
    w->done = true;
    return true;
  }
  dispatch_generation(id, *p->gen, env, callbacks);
  return !broken_;
}

void Session::dispatch_generation(uint64_t id, Generation& g, const wire::Envelope& env, int* callbacks) {
  switch (env.body_type()) {
    case wire::Body::TokenEvent: {
      const TokenEventView ev = view_token_event(*env.body_as_TokenEvent());
      CallbackScope scope(&callback_depth_);
      ++*callbacks;
      g.on_token(ev);
      return;
    }
    case wire::Body::Finished: {
      const Finished f = decode_finished(*env.body_as_Finished());
      const int rc = finished_rc(f.reason);
      ++*callbacks;
      complete(id, rc, finished_message(rc), rc == SPECD_OK || rc == SPECD_E_CANCELED ? &f : nullptr);
      return;
    }
    case wire::Body::Error: {
      Error e = decode_error(*env.body_as_Error());
      if (e.message.empty()) e.message = error_message(e.code);
      ++*callbacks;
      complete(id, e.code, e.message, nullptr);
      return;
    }
    default:
      ++*callbacks;
      complete(id, SPECD_E_PROTOCOL,
               std::string("the daemon answered a Generate with ") + body_name(env.body_type()), nullptr);
      return;
  }
}

void Session::complete(uint64_t id, int rc, const std::string& message, const Finished* result) {
  // Out of the table first: the callback may start or cancel requests, and the Generation dies
  // with `p` right after on_done returns.
  std::optional<Pending> p = table_.take(id);
  if (!p) return;
  CallbackScope scope(&callback_depth_);
  p->gen->on_done(rc, message, result);
}

}  // namespace specd::clients
