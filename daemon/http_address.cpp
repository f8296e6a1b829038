// HTTP listen addresses: numeric hosts only (plus "localhost"), so what the daemon binds never
// depends on name resolution at boot.
#include "daemon/http_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

namespace specd::daemon {

Result<HttpAddress> parse_http_address(const std::string& text) {
  HttpAddress a;
  a.text = text;
  if (text.rfind("unix:", 0) == 0) {
    a.unix_socket = true;
    a.path = text.substr(5);
    a.loopback = true;
    if (a.path.empty() || a.path[0] != '/')
      return make_error(SPECD_E_INVALID_ARG, "HTTP address '%s': a Unix socket needs an absolute path (unix:/run/specd/http.sock)", text.c_str());
    return a;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size())
    return make_error(SPECD_E_INVALID_ARG, "HTTP address '%s' has no port (use HOST:PORT, e.g. 127.0.0.1:8080)", text.c_str());
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (*end || p < 1 || p > 65535 || port[0] == '+' || port[0] == ' ')
    return make_error(SPECD_E_INVALID_ARG, "HTTP address '%s': the port must be in 1..65535", text.c_str());
  a.port = static_cast<uint16_t>(p);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) {
    a.loopback = buf[0] == 127;
  } else if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    static const unsigned char kLoop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    a.loopback = std::equal(buf, buf + 16, kLoop6);
  } else {
    return make_error(SPECD_E_INVALID_ARG, "HTTP address '%s': the host must be a numeric IPv4/IPv6 address or localhost", text.c_str());
  }
  a.host = host;
  return a;
}

}  // namespace specd::daemon
