// A streamed generation with Ctrl-C as Cancel.
#include "clients/specctl_stream.h"

#include <cstdio>

namespace specd::specctl {

volatile std::sig_atomic_t g_interrupted = 0;

namespace {
void on_sigint(int) { g_interrupted = 1; }
}  // namespace

void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

Streamed stream_generation(client::Client& c, const client::GenParams& p, bool echo) {
  Streamed out;
  bool done = false;
  client::Generation g = c.generate(
      p,
      [&](const client::TokenEvent& ev) {
        if (!echo) return;
        std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        std::fflush(stdout);
        out.shown = out.shown || !ev.text.empty();
      },
      [&](int code, std::string_view msg, const client::GenResult* r) {
        done = true;
        out.rc = code;
        out.message = msg;
        if (r) out.result = *r;
      });
  bool cancel_sent = false;
  while (!done) {
    try {
      c.poll(200);
    } catch (const client::Error&) {
      if (!done) throw;  // a lost connection ended the request: its on_done has the better message
    }
    if (g_interrupted && !cancel_sent) {
      g.cancel();
      cancel_sent = true;
    }
  }
  return out;
}

}  // namespace specd::specctl
