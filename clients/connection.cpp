// Connection: non-blocking frame I/O on the daemon socket, multiplexed with a wake eventfd in one epoll set.
#include "clients/connection.h"

#include "clients/unix_socket.h"
#include "protocol_generated.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace specd::clients {
namespace {

// Reads per receive(): bounds one poll's work so a chatty daemon cannot starve the caller's loop;
// epoll is level-triggered, so what is left makes the next wait return at once.
constexpr int kReadsPerReceive = 64;
constexpr size_t kReadChunk = 64 * 1024;

Result<void> epoll_watch(int epoll_fd, int op, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd, op, fd, &ev) != 0)
    return Error{SPECD_E_IO, "cannot watch the socket: " + errno_text(errno)};
  return {};
}

}  // namespace

Connection::Connection(UniqueFd sock, UniqueFd epoll, UniqueFd wake, uint32_t max_frame_bytes)
    : sock_(std::move(sock)), epoll_(std::move(epoll)), wake_(std::move(wake)), reader_(max_frame_bytes) {}

Result<Connection> Connection::open(const std::string& path, int32_t timeout_ms, uint32_t max_frame_bytes) {
  auto sock = connect_unix(path, timeout_ms);
  if (!sock) return sock.error();
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return Error{SPECD_E_IO, "cannot create an epoll set: " + errno_text(errno)};
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return Error{SPECD_E_IO, "cannot create an eventfd: " + errno_text(errno)};
  SPECD_TRY(epoll_watch(epoll.get(), EPOLL_CTL_ADD, sock->get(), EPOLLIN));
  SPECD_TRY(epoll_watch(epoll.get(), EPOLL_CTL_ADD, wake.get(), EPOLLIN));
  return Connection(std::move(sock.value()), std::move(epoll), std::move(wake), max_frame_bytes);
}

void Connection::queue(std::span<const uint8_t> flatbuffer) {
  // Reclaim the sent prefix once it dominates, so a long-lived connection's buffer stays small.
  if (out_pos_ > 0 && out_pos_ >= out_.size() / 2) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_pos_));
    out_pos_ = 0;
  }
  append_frame(&out_, flatbuffer);
}

Result<void> Connection::flush() {
  if (!sock_) return Error{SPECD_E_IO, "the connection to the daemon is closed"};
  while (has_output()) {
    const ssize_t n = ::send(sock_.get(), out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n >= 0) {
      out_pos_ += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EPIPE || errno == ECONNRESET) return Error{SPECD_E_IO, "the daemon closed the connection"};
    return Error{SPECD_E_IO, "lost the connection to the daemon: " + errno_text(errno)};
  }
  if (!has_output()) {
    out_.clear();
    out_pos_ = 0;
  }
  return watch_writable(has_output());
}

Result<void> Connection::watch_writable(bool on) {
  if (on == watching_writable_) return {};
  SPECD_TRY(epoll_watch(epoll_.get(), EPOLL_CTL_MOD, sock_.get(), on ? (EPOLLIN | EPOLLOUT) : EPOLLIN));
  watching_writable_ = on;
  return {};
}

Result<bool> Connection::wait(int32_t timeout_ms) {
  std::array<epoll_event, 4> events{};
  const int n =
      ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms < 0 ? -1 : timeout_ms);
  if (n > 0) return true;
  if (n == 0 || errno == EINTR) return false;
  return Error{SPECD_E_IO, "waiting for the daemon failed: " + errno_text(errno)};
}

Result<void> Connection::receive(const FrameHandler& on_frame) {
  if (!sock_) return Error{SPECD_E_IO, "the connection to the daemon is closed"};
  std::array<uint8_t, kReadChunk> chunk;
  for (int reads = 0;; ++reads) {
    // Frames already buffered go first: an earlier call may have stopped in the middle of them.
    for (;;) {
      auto frame = reader_.next();
      if (!frame) return frame.error();
      if (frame.value() == nullptr) break;
      if (!on_frame(*frame.value())) return {};
    }
    if (reads == kReadsPerReceive) return {};
    const ssize_t n = ::recv(sock_.get(), chunk.data(), chunk.size(), 0);
    if (n > 0) {
      reader_.feed(std::span<const uint8_t>(chunk.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) {
      return Error{SPECD_E_IO, reader_.buffered() > 0 ? "the daemon closed the connection in the middle of a frame"
                                                      : "the daemon closed the connection"};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
    if (errno == ECONNRESET) return Error{SPECD_E_IO, "the daemon closed the connection"};
    return Error{SPECD_E_IO, "lost the connection to the daemon: " + errno_text(errno)};
  }
}

void Connection::wake() const {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero, which is all a wake needs.
  [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void Connection::clear_wake() const {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(wake_.get(), &count, sizeof count);
}

}  // namespace specd::clients
