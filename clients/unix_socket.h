// connect_unix: a connected, non-blocking Unix stream socket, with connect errors a person can act on.
#pragma once

#include "clients/unique_fd.h"
#include "kernels/result.h"

#include <cstdint>
#include <string>

namespace specd::clients {

// Connect to the socket at path, waiting at most timeout_ms (< 0: no bound) when the daemon's
// listen backlog is full. The returned socket is non-blocking and close-on-exec.
// Errors (all SPECD_E_IO unless noted): "daemon not running (no socket at PATH)" when nothing
// listens there, "timed out connecting to PATH", "cannot connect to PATH: <strerror>";
// SPECD_E_ACCESS "permission denied on PATH"; SPECD_E_INVALID_ARG for an empty path or one too long
// for sun_path.
Result<UniqueFd> connect_unix(const std::string& path, int32_t timeout_ms);

// strerror(e) without strerror's shared buffer.
std::string errno_text(int e);

}  // namespace specd::clients
