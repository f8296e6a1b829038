// Line input for the chat: buffered read(2) that gives way to SIGINT.
#include "clients/specctl_chat_input.h"

#include "clients/specctl_stream.h"

#include <cerrno>
#include <unistd.h>

namespace specd::specctl {

LineReader::Got LineReader::next(std::string* line) {
  for (;;) {
    if (const size_t nl = buf_.find('\n'); nl != std::string::npos) {
      line->assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      return Got::Line;
    }
    if (eof_) {
      if (buf_.empty()) return Got::End;
      *line = std::move(buf_);
      buf_.clear();
      return Got::Line;
    }
    if (g_interrupted) return Got::Interrupted;
    char chunk[4096];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) buf_.append(chunk, static_cast<size_t>(n));
    else if (n < 0 && errno == EINTR) continue;  // the loop's check above reports a SIGINT
    else eof_ = true;
  }
}

}  // namespace specd::specctl
