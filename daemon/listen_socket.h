// The daemon's listening Unix socket: the one systemd passed (socket activation) or a bound path.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <string>

namespace specd::daemon {

struct ListenSocket {
  int fd = -1;             // listening SOCK_STREAM Unix socket, close-on-exec; the caller owns it
  bool activated = false;  // passed in by systemd (LISTEN_FDS / LISTEN_PID), not bound here
  std::string path;        // what was bound ("" when activated)
};

// The first socket-activation fd when LISTEN_FDS names one for this process (the environment
// variables are then unset so children don't inherit them); otherwise a new socket bound at path
// with mode (chmod after bind). A stale socket file nobody listens on is removed first; a live one
// or a non-socket file at path is an error. Errors: SPECD_E_IO naming the path and the cause.
Result<ListenSocket> open_listen_socket(const std::string& path, uint32_t mode);

}  // namespace specd::daemon
