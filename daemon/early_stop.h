// Stop signals that arrive while the daemon is starting: between the socket's listen() (a client
// can connect from then on) and the event loop's signal watchers.
#pragma once

namespace specd::daemon {

// Records SIGTERM and SIGINT instead of dying of them, and ignores SIGHUP (there is nothing to
// rescan yet), until the loop's watchers replace these handlers. Call it before the socket
// listens. Errors: none; a sigaction that fails leaves that signal's action as it was.
void hold_stop_signals();

// Sends this thread each stop signal held since hold_stop_signals(), once; call it after the loop's
// watchers are installed, so a stop asked for during start-up drains like one asked for later.
// Errors: none.
void replay_held_stop_signals();

}  // namespace specd::daemon
