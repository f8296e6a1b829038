// Generation: one streaming request as the session sees it; the ABI edge derives from it to call C callbacks.
#pragma once

#include "clients/messages.h"

#include <atomic>
#include <cstdint>
#include <string>

namespace specd::clients {

class Connection;

class Generation {
 public:
  Generation() = default;
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;
  virtual ~Generation() = default;

  // Called for each TokenEvent, in order; ev is valid during the call only.
  virtual void on_token(const TokenEventView& ev) = 0;
  // Called exactly once, last. result is set when the daemon finished the request (rc SPECD_OK
  // or SPECD_E_CANCELED), null otherwise. The session destroys the Generation right after.
  virtual void on_done(int rc, const std::string& message, const Finished* result) = 0;

  // Safe from any thread while the Generation lives: flags it and wakes the session's loop,
  // whose next poll sends the Cancel. Only the atomic flag and the eventfd are touched here.
  void request_cancel();

 private:
  friend class Session;
  friend class RequestTable;
  const Connection* wake_ = nullptr;  // set by Session::start; the session outlives its requests
  std::atomic<bool> cancel_requested_{false};
  bool cancel_sent_ = false;  // poll thread only
};

}  // namespace specd::clients
