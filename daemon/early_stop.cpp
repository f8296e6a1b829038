// Stop signals held during start-up; see early_stop.h. The default action of SIGTERM kills the
// process, so a client that connected (the socket listens before the watchers exist) and asked
// for a stop saw the daemon die with 143 instead of draining and exiting 0.
#include "daemon/early_stop.h"

#include <csignal>

namespace specd::daemon {
namespace {

volatile std::sig_atomic_t g_held_term = 0;
volatile std::sig_atomic_t g_held_int = 0;

extern "C" void hold_signal(int sig) {
  if (sig == SIGTERM) g_held_term = 1;
  if (sig == SIGINT) g_held_int = 1;
}

void set_action(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(sig, &sa, nullptr);
}

}  // namespace

void hold_stop_signals() {
  g_held_term = 0;
  g_held_int = 0;
  set_action(SIGTERM, hold_signal);
  set_action(SIGINT, hold_signal);
  set_action(SIGHUP, SIG_IGN);
}

void replay_held_stop_signals() {
  if (g_held_term) {
    g_held_term = 0;
    std::raise(SIGTERM);
  }
  if (g_held_int) {
    g_held_int = 0;
    std::raise(SIGINT);
  }
}

}  // namespace specd::daemon
