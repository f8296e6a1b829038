// Where specd keeps its socket and run log when the config and flags do not say: one answer for the
// daemon (`specd serve`), specctl and the C client library, so a client looks where a daemon of the
// same user or the system service listens.
//
// The system service (root, or systemd handing over $RUNTIME_DIRECTORY/$STATE_DIRECTORY or a socket
// in $LISTEN_FDS) uses /run/specd and /var/lib/specd. A normal user gets $XDG_RUNTIME_DIR/specd for
// the socket and $XDG_STATE_HOME/specd (default ~/.local/state/specd) for the run log, so
// `specd serve --model m.gguf` works without root.
#pragma once

#include <string>
#include <vector>

namespace specd {

// What the resolution reads from the process; from_environment() fills it, tests build their own.
struct PathEnv {
  bool root = false;                  // effective uid 0
  bool listen_fds = false;            // $LISTEN_FDS is set: systemd passed the socket
  std::string runtime_directory;      // $RUNTIME_DIRECTORY (first entry), from RuntimeDirectory=
  std::string state_directory;        // $STATE_DIRECTORY (first entry), from StateDirectory=
  std::string xdg_runtime_dir;        // $XDG_RUNTIME_DIR
  std::string xdg_state_home;         // $XDG_STATE_HOME
  std::string home;                   // $HOME

  static PathEnv from_environment();
};

constexpr const char* kSystemSocket = "/run/specd/specd.sock";
constexpr const char* kSystemRunlog = "/var/lib/specd/runs.db";

struct DefaultPaths {
  std::string socket;   // the daemon's socket
  std::string runlog;   // the SQLite run log
  bool system = false;  // the system service's places (directories made by systemd or root)
  std::string reason;   // for --help and the start-up log: "root", "systemd", "user"
};

// The daemon's defaults for env. Relative or empty XDG values are ignored, as the XDG spec says.
DefaultPaths default_paths(const PathEnv& env);

// Where a client looks when neither its option nor $SPECD_SOCKET names a socket: this user's own
// daemon first (when it is not root), then the system service. The first that exists wins; when
// none does, the last (the system socket) is used, and its "no socket" error names them all.
std::vector<std::string> client_socket_candidates(const PathEnv& env);
std::string client_default_socket(const PathEnv& env);

}  // namespace specd
