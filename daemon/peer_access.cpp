// Peer access: SO_PEERCRED and SO_PEERGROUPS, checked against [access] allow_uids / allow_gids.
#include "daemon/peer_access.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59  // Linux >= 4.13; older C libraries lack the name
#endif

namespace specd::daemon {
namespace {

// SO_PEERGROUPS into groups; false (errno set) when the kernel cannot tell.
bool read_groups(int fd, std::vector<uint32_t>* groups) {
  std::vector<gid_t> buf(64);
  for (int tries = 0; tries < 4; ++tries) {
    socklen_t len = static_cast<socklen_t>(buf.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf.data(), &len) == 0) {
      groups->assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(len / sizeof(gid_t)));
      return true;
    }
    if (errno != ERANGE) return false;
    buf.resize(std::max<size_t>(buf.size() * 2, len / sizeof(gid_t) + 1));  // len says how much is needed
  }
  return false;
}

bool has(const std::vector<uint32_t>& v, int64_t id) {
  return id >= 0 && std::find(v.begin(), v.end(), static_cast<uint32_t>(id)) != v.end();
}

}  // namespace

PeerCred read_peer_cred(int fd) {
  PeerCred p;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    p = PeerCred{static_cast<int32_t>(cred.uid), static_cast<int32_t>(cred.gid), static_cast<int32_t>(cred.pid), {}};
  if (!read_groups(fd, &p.groups)) {
    const int e = errno;
    p.groups.clear();
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
      std::fprintf(stderr, "specd: warning: SO_PEERGROUPS failed (%s): [access] allow_gids sees only a client's primary group\n",
                   std::strerror(e));
  }
  return p;
}

bool peer_allowed(const Config& cfg, const PeerCred& p) {
  if (cfg.allow_uids.empty() && cfg.allow_gids.empty()) return true;
  if (has(cfg.allow_uids, p.uid) || has(cfg.allow_gids, p.gid)) return true;
  return std::any_of(p.groups.begin(), p.groups.end(), [&](uint32_t g) { return has(cfg.allow_gids, g); });
}

std::string refusal_reason(const PeerCred& p) {
  std::string groups = std::to_string(p.gid);
  for (uint32_t g : p.groups)
    if (static_cast<int64_t>(g) != p.gid) groups.append(",").append(std::to_string(g));
  return "uid " + std::to_string(p.uid) + " (groups " + groups + ") is not allowed by the daemon's [access] lists";
}

}  // namespace specd::daemon
