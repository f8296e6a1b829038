// Default socket and run-log paths for `specd serve`, and their directories.
#include "daemon/serve_paths.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace specd::daemon {

void apply_default_paths(Config& cfg, const DefaultPaths& d) {
  if (cfg.socket_path.empty()) cfg.socket_path = d.socket;
  if (cfg.runlog_path.empty()) cfg.runlog_path = d.runlog;
}

uint32_t socket_dir_mode(const DefaultPaths& d) { return d.system ? 0755 : 0700; }

Status make_parent_dirs(const std::string& file_path, uint32_t mode) {
  const size_t last = file_path.rfind('/');
  if (last == std::string::npos || last == 0) return {};  // in the current directory or /
  const std::string dir = file_path.substr(0, last);
  // Walk down from the top so each missing level gets the mode (mkdir applies the umask; chmod
  // afterwards would briefly leave a looser directory, so the mode is all we rely on).
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string part = dir.substr(0, slash);
    if (::mkdir(part.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST)
      return make_error(SPECD_E_IO, "cannot create directory %s: %s", part.c_str(), std::strerror(errno));
    if (slash == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error(SPECD_E_IO, "%s is not a directory", dir.c_str());
  return {};
}

}  // namespace specd::daemon
