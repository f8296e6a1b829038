// Default socket and run-log places for the daemon and its clients (see default_paths.h).
#include "clients/default_paths.h"

#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

namespace specd {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// systemd joins several directories with ':'; the first is the unit's own.
std::string first_entry(const std::string& list) { return list.substr(0, list.find(':')); }

// XDG base directories must be absolute; anything else is treated as unset.
bool usable(const std::string& dir) { return !dir.empty() && dir[0] == '/'; }

std::string user_state_dir(const PathEnv& env) {
  if (usable(env.xdg_state_home)) return env.xdg_state_home + "/specd";
  if (usable(env.home)) return env.home + "/.local/state/specd";
  return "";
}

std::string user_socket(const PathEnv& env) {
  if (usable(env.xdg_runtime_dir)) return env.xdg_runtime_dir + "/specd/specd.sock";
  // No runtime dir (a login without pam_systemd): the private state dir holds the socket instead.
  const std::string state = user_state_dir(env);
  return state.empty() ? std::string() : state + "/specd.sock";
}

}  // namespace

PathEnv PathEnv::from_environment() {
  PathEnv e;
  e.root = ::geteuid() == 0;
  e.listen_fds = !env_or_empty("LISTEN_FDS").empty();
  e.runtime_directory = first_entry(env_or_empty("RUNTIME_DIRECTORY"));
  e.state_directory = first_entry(env_or_empty("STATE_DIRECTORY"));
  e.xdg_runtime_dir = env_or_empty("XDG_RUNTIME_DIR");
  e.xdg_state_home = env_or_empty("XDG_STATE_HOME");
  e.home = env_or_empty("HOME");
  return e;
}

DefaultPaths default_paths(const PathEnv& env) {
  DefaultPaths p;
  // systemd's own directories win, for the system service and for a user unit alike.
  const bool systemd = usable(env.runtime_directory) || usable(env.state_directory) || env.listen_fds;
  const std::string user_sock = user_socket(env), user_state = user_state_dir(env);
  if (env.root || systemd || user_sock.empty() || user_state.empty()) {
    p.system = true;
    p.reason = env.root ? "root" : (systemd ? "systemd" : "no $HOME or $XDG_RUNTIME_DIR");
    p.socket = usable(env.runtime_directory) ? env.runtime_directory + "/specd.sock" : kSystemSocket;
    p.runlog = usable(env.state_directory) ? env.state_directory + "/runs.db" : kSystemRunlog;
    return p;
  }
  p.reason = "user";
  p.socket = user_sock;
  p.runlog = user_state + "/runs.db";
  return p;
}

std::vector<std::string> client_socket_candidates(const PathEnv& env) {
  std::vector<std::string> out;
  if (!env.root) {
    const std::string own = user_socket(env);
    if (!own.empty()) out.push_back(own);
  }
  out.push_back(kSystemSocket);
  return out;
}

std::string client_default_socket(const PathEnv& env) {
  const std::vector<std::string> all = client_socket_candidates(env);
  struct stat st {};
  for (const std::string& path : all)
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return path;
  return all.back();
}

}  // namespace specd
