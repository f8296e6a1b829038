// The chat's input: one user message per line from stdin, with plain read(2) so that Ctrl-C
// (SIGINT, installed without SA_RESTART) interrupts a wait at the prompt.
//
// No readline/libedit: the terminal's canonical mode already gives erase and kill-line, piped
// input needs none of it, and `rlwrap specctl chat` adds history for those who want it.
#pragma once

#include <csignal>
#include <string>

namespace specd::specctl {

// Set by the chat's SIGINT handler; whoever acts on it clears it.
extern volatile std::sig_atomic_t g_chat_interrupted;

// Install the SIGINT handler that sets g_chat_interrupted (no SA_RESTART: blocking reads and
// the client's poll return at once).
void install_chat_sigint();

class LineReader {
 public:
  enum class Got { Line, End, Interrupted };
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line without its '\n' (a last line without one counts too); End at end of input
  // or a read error; Interrupted when SIGINT arrived while waiting.
  Got next(std::string* line);

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace specd::specctl
