// connect_unix: socket(2) + connect(2) on a Unix path, errno turned into messages naming the path.
#include "clients/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace specd::clients {
namespace {

Error connect_error(const std::string& path, int e) {
  switch (e) {
    case ENOENT:
    case ENOTDIR:
    case ECONNREFUSED:  // a socket file nobody listens on: a daemon that died without removing it
      return Error{SPECD_E_IO, "daemon not running (no socket at " + path + ")"};
    case EACCES:
    case EPERM:  // the socket's mode and group decide, like the daemon's [access] lists: the same code
      return Error{SPECD_E_ACCESS, "permission denied on " + path};
    case EAGAIN:
    case EINPROGRESS:
      // SO_SNDTIMEO expired while the daemon's listen backlog stayed full.
      return Error{SPECD_E_IO, "timed out connecting to " + path};
    default:
      return Error{SPECD_E_IO, "cannot connect to " + path + ": " + errno_text(e)};
  }
}

void set_send_timeout(int fd, int32_t timeout_ms) {
  timeval tv{};
  if (timeout_ms > 0) {
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = static_cast<suseconds_t>(timeout_ms % 1000) * 1000;
  }
  // Best effort: without it a full backlog blocks connect() longer, which is still correct.
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

std::string errno_text(int e) {
  char buf[256];
  // The GNU strerror_r returns the message, which may or may not live in buf.
  return ::strerror_r(e, buf, sizeof buf);
}

Result<UniqueFd> connect_unix(const std::string& path, int32_t timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return Error{SPECD_E_INVALID_ARG, "empty socket path"};
  if (path.size() >= sizeof addr.sun_path)
    return Error{SPECD_E_INVALID_ARG, "socket path too long (" + std::to_string(path.size()) + " bytes, at most " +
                                          std::to_string(sizeof addr.sun_path - 1) + "): " + path};
  std::memcpy(addr.sun_path, path.data(), path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error{SPECD_E_IO, "cannot create a socket: " + errno_text(errno)};
  // A blocking connect bounded by SO_SNDTIMEO: on Unix sockets it only waits for backlog room.
  set_send_timeout(fd.get(), timeout_ms);
  int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  while (rc != 0 && errno == EINTR) {
    // An interrupted connect keeps going in the kernel; a second call reports how it ended.
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    if (rc != 0 && errno == EISCONN) rc = 0;
  }
  if (rc != 0) return connect_error(path, errno);
  set_send_timeout(fd.get(), 0);

  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return Error{SPECD_E_IO, "cannot make the socket non-blocking: " + errno_text(errno)};
  return fd;
}

}  // namespace specd::clients
