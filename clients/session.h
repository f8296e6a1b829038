// Session: one handshaken connection to the daemon, its requests in flight, and the poll loop that dispatches replies.
#pragma once

#include "clients/connection.h"
#include "clients/generation.h"
#include "clients/messages.h"
#include "clients/request_table.h"
#include "kernels/result.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace specd::clients {

struct SessionOptions {
  std::string socket_path;
  std::string client_name;
  int32_t timeout_ms = 10000;  // < 0: no bound
  uint32_t max_frame_bytes = 64u << 20;
};

// Thread rule: one thread at a time uses a Session; only Generation::request_cancel may come from
// another. Callbacks run inside poll() and the blocking calls, on the calling thread.
class Session {
 public:
  // Connect and do the Hello/Welcome handshake (see specd_client_connect for the errors).
  static Result<std::unique_ptr<Session>> connect(const SessionOptions& opts);
  ~Session() { close(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int event_fd() const { return conn_.event_fd(); }
  const Welcome& welcome() const { return welcome_; }
  bool in_callback() const { return callback_depth_ > 0; }

  // Queue a Generate and send what the socket takes. On success g belongs to the session until
  // its on_done returns; on failure g is destroyed and no callback runs.
  Result<void> start(std::unique_ptr<Generation> g, const GenerateRequest& req);
  // Wait up to timeout_ms, then read, dispatch and write; returns the callbacks run. After a
  // failure every request has had its on_done and each later call returns the same error.
  Result<int> poll(int32_t timeout_ms);
  // Blocking calls: poll until the reply (other requests' callbacks run meanwhile).
  Result<Finished> generate(const GenerateRequest& req);  // no time bound
  Result<StatusInfo> status();                            // bounded by timeout_ms
  Result<RunList> list_runs(const RunsQuery& query);      // bounded by timeout_ms
  // End every request with SPECD_E_CANCELED and close the socket; later calls fail.
  void close();

 private:
  Session(Connection conn, const SessionOptions& opts) : conn_(std::move(conn)), opts_(opts) {}
  Result<void> handshake();
  Result<void> check_frame_size(size_t bytes) const;
  Result<void> call(const std::function<std::vector<uint8_t>(uint64_t)>& encode, int expected_body, const char* what,
                    const std::function<void(const wire::Envelope&)>& on_reply);
  Result<void> usable(const char* what) const;
  bool dispatch(const wire::Envelope& env, int* callbacks);
  void dispatch_generation(uint64_t id, Generation& g, const wire::Envelope& env, int* callbacks);
  void complete(uint64_t id, int rc, const std::string& message, const Finished* result);
  // Break the session with e: close the socket and end every request with e.
  Error fail(const Error& e);
  void send_cancels();

  Connection conn_;
  SessionOptions opts_;
  Welcome welcome_;
  RequestTable table_;
  std::optional<Error> broken_;
  std::optional<Error> deferred_failure_;  // a send failure inside start(), reported by the next poll
  int callback_depth_ = 0;
  bool closed_ = false;
};

}  // namespace specd::clients
