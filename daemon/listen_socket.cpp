// Opening the listening socket: sd_listen_fds, stale-socket removal, bind, chmod, listen.
#include "daemon/listen_socket.h"

#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <utility>

namespace specd::daemon {
namespace {

constexpr int kBacklog = 128;

// Closes the fd unless released: every error path below leaks nothing.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

Result<sockaddr_un> address_of(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path)
    return make_error(SPECD_E_IO, "socket path '%s' is empty or longer than %zu bytes", path.c_str(), sizeof a.sun_path - 1);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// A socket file left by a daemon that died is removed; one that still answers is in use.
Status remove_stale(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return {};  // nothing there
  if (!S_ISSOCK(st.st_mode)) return make_error(SPECD_E_IO, "%s exists and is not a socket; not removing it", path.c_str());
  Fd probe{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (probe.fd < 0) return make_error(SPECD_E_IO, "socket: %s", std::strerror(errno));
  if (::connect(probe.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return make_error(SPECD_E_IO, "%s: another daemon is listening there", path.c_str());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return make_error(SPECD_E_IO, "cannot remove stale socket %s: %s", path.c_str(), std::strerror(errno));
  return {};
}

Result<ListenSocket> activated_socket() {
  const int n = sd_listen_fds(1);
  if (n <= 0) return ListenSocket{};
  const int fd = SD_LISTEN_FDS_START;
  for (int extra = fd + 1; extra < fd + n; ++extra) ::close(extra);  // we listen on one socket only
  if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0)
    return make_error(SPECD_E_IO, "the socket passed by systemd (fd %d) is not a listening Unix stream socket", fd);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return ListenSocket{fd, true, ""};
}

}  // namespace

Result<ListenSocket> open_listen_socket(const std::string& path, uint32_t mode) {
  auto act = activated_socket();
  if (!act || act->fd >= 0) return act;
  auto addr = address_of(path);
  if (!addr) return addr.error();
  SPECD_TRY(remove_stale(path, addr.value()));
  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return make_error(SPECD_E_IO, "socket: %s", std::strerror(errno));
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&addr.value()), sizeof(sockaddr_un)) != 0)
    return make_error(SPECD_E_IO, "cannot bind %s: %s", path.c_str(), std::strerror(errno));
  // chmod before listen(): until then a connect is refused, so the mode is never looser than asked.
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0 || ::listen(s.fd, kBacklog) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return make_error(SPECD_E_IO, "cannot set up %s: %s", path.c_str(), std::strerror(err));
  }
  return ListenSocket{s.release(), false, path};
}

}  // namespace specd::daemon
