// Connection: the client's socket, its epoll set and cross-thread wake-up, and buffered frame I/O.
#pragma once

#include "clients/frame_reader.h"
#include "clients/unique_fd.h"
#include "kernels/result.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace specd::clients {

// Gets each verified frame; returns false to stop taking frames (the rest stay buffered).
using FrameHandler = std::function<bool(const wire::Envelope&)>;

// One epoll fd watches the socket (readable; writable while output is queued) and an eventfd that
// other threads poke, so an application's loop needs to watch a single descriptor.
class Connection {
 public:
  static Result<Connection> open(const std::string& path, int32_t timeout_ms, uint32_t max_frame_bytes);

  // The epoll descriptor: readable when wait() would return true.
  int event_fd() const { return epoll_.get(); }
  // Queue one FlatBuffer as a frame; flush() sends it.
  void queue(std::span<const uint8_t> flatbuffer);
  bool has_output() const { return out_pos_ < out_.size(); }
  // A complete frame is already buffered (left by a handler that stopped early): don't wait.
  bool has_input() const { return reader_.has_frame(); }
  // Write what the socket takes now, and watch for writability while output remains.
  // Errors: SPECD_E_IO "lost the connection to the daemon: ...".
  Result<void> flush();
  // Wait up to timeout_ms (< 0: no bound) for the socket or a wake(). False on timeout or EINTR.
  Result<bool> wait(int32_t timeout_ms);
  // Hand buffered and newly readable frames to on_frame. Errors: SPECD_E_IO when the daemon
  // closed the connection or a read failed, FrameReader's SPECD_E_PROTOCOL errors.
  Result<void> receive(const FrameHandler& on_frame);
  // Make event_fd() readable. Safe from any thread: only writes to the eventfd.
  void wake() const;
  void clear_wake() const;
  // Close the socket now (the daemon then cancels this connection's requests).
  void close() { sock_.reset(); }

 private:
  Connection(UniqueFd sock, UniqueFd epoll, UniqueFd wake, uint32_t max_frame_bytes);
  Result<void> watch_writable(bool on);

  UniqueFd sock_;
  UniqueFd epoll_;
  UniqueFd wake_;
  FrameReader reader_;
  std::vector<uint8_t> out_;
  size_t out_pos_ = 0;
  bool watching_writable_ = false;
};

}  // namespace specd::clients
