// HTTP listen addresses as [http] listen and --http give them: "127.0.0.1:8080", "[::1]:8080",
// "localhost:8080" (the IPv4 loopback), "0.0.0.0:8080", or "unix:/run/specd/http.sock".
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <string>

namespace specd::daemon {

struct HttpAddress {
  bool unix_socket = false;
  std::string host;       // numeric IPv4 or IPv6 (without brackets); "" for a Unix socket
  uint16_t port = 0;
  std::string path;       // the Unix socket's path
  bool loopback = false;  // 127.0.0.0/8 or ::1 (a Unix socket counts as local too)
  std::string text;       // as given, for messages
};

// Parse one address. Errors: SPECD_E_INVALID_ARG naming the text (no port, a port outside
// 1..65535, a host that is not a numeric address or "localhost", an empty or relative socket path).
Result<HttpAddress> parse_http_address(const std::string& text);

}  // namespace specd::daemon
