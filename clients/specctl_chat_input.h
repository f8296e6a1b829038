// The chat's input: one user message per line from stdin, with plain read(2) so that Ctrl-C
// (install_sigint's handler, without SA_RESTART) interrupts a wait at the prompt.
//
// No readline/libedit: the terminal's canonical mode already gives erase and kill-line, piped
// input needs none of it, and `rlwrap specctl chat` adds history for those who want it.
#pragma once

#include <string>

namespace specd::specctl {

class LineReader {
 public:
  enum class Got { Line, End, Interrupted };
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line without its '\n' (a last line without one counts too); End at end of input
  // or a read error; Interrupted when g_interrupted is set (SIGINT arrived while waiting).
  Got next(std::string* line);

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace specd::specctl
