// One streamed generation for specctl's generate and chat: text to stdout as it arrives, and
// Ctrl-C (SIGINT) turned into a Cancel, so the request still ends with the daemon's Finished.
#pragma once

#include "clients/specd_client.hpp"

#include <csignal>
#include <optional>
#include <string>

namespace specd::specctl {

// Set by specctl's SIGINT handler; whoever acts on it clears it.
extern volatile std::sig_atomic_t g_interrupted;

// Install the SIGINT handler that sets g_interrupted. No SA_RESTART, so a blocking read(2) and
// the client's poll return at once.
void install_sigint();

struct Streamed {
  int rc = SPECD_OK;                        // on_done's code
  std::string message;                      // and its message
  std::optional<client::GenResult> result;  // when the daemon finished the request (a cancel too)
  bool shown = false;                       // some text went to stdout
};

// Run p, writing each step's text to stdout when echo; a SIGINT sends one Cancel (g_interrupted
// stays set for the caller to see). Throws client::Error when the connection is lost.
Streamed stream_generation(client::Client& c, const client::GenParams& p, bool echo);

}  // namespace specd::specctl
