// A small blocking HTTP/1.1 client for tests that need many requests from threads (the soak):
// one request per connection (Connection: close), chunked bodies decoded. No doctest assertions,
// so any thread may call it. (test_http.cpp drives the API with curl and the openai package instead.)
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace specd::test {

// A loopback port nobody listens on now (bound and released; a daemon binds it right after).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return 0;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A TCP connection to 127.0.0.1:port; -1 when it cannot connect.
inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct HttpResult {
  bool complete = false;  // the whole response arrived (false: connect failed, timeout, or vanished)
  int status = 0;
  std::string body;       // de-chunked
};

// POST (or GET when body is empty) path on 127.0.0.1:port. vanish_after_bytes: close the connection
// once that many response bytes arrived (a client that goes away mid-stream).
inline HttpResult http_request(int port, const std::string& path, const std::string& body, int timeout_ms,
                               size_t vanish_after_bytes = std::string::npos) {
  HttpResult r;
  const int fd = connect_loopback(port);
  if (fd < 0) return r;
  std::string req = std::string(body.empty() ? "GET " : "POST ") + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return r;
  }
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool eof = false;
  while (raw.size() < vanish_after_bytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[8192];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      eof = n == 0;
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (!eof || head_end == std::string::npos || raw.rfind("HTTP/1.", 0) != 0) return r;
  r.status = std::atoi(raw.c_str() + 9);
  std::string head = raw.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest = raw.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") == std::string::npos) {
    r.body = std::move(rest);
    r.complete = true;
    return r;
  }
  size_t pos = 0;
  for (;;) {
    const size_t nl = rest.find("\r\n", pos);
    if (nl == std::string::npos) return r;
    const size_t size = std::strtoul(rest.c_str() + pos, nullptr, 16);
    if (size == 0) break;
    if (nl + 2 + size > rest.size()) return r;
    r.body.append(rest, nl + 2, size);
    pos = nl + 2 + size + 2;
  }
  r.complete = true;
  return r;
}

}  // namespace specd::test
