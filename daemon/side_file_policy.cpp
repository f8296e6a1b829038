// open_side_file: realpath, an allowed-folder check, then openat(folder, name, O_NOFOLLOW).
#include "daemon/side_file_policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace specd::daemon {
namespace fs = std::filesystem;
namespace {

// realpath(3), or "" when the path does not resolve.
std::string resolve(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (!r) return "";
  std::string out = r;
  std::free(r);
  return out;
}

Error refused(const std::string& path) {
  return make_error(SPECD_E_ACCESS, "side file %s is not in a directory side files may come from (daemon.side_file_dirs)",
                    path.c_str());
}

// folder opened as a directory if it is one of dirs, compared by the device and inode of what was
// opened: a name swapped for a symlink after realpath cannot redirect the later openat.
Result<SideFd> open_allowed_folder(const std::vector<std::string>& dirs, const std::string& folder,
                                   const std::string& path) {
  if (folder.empty()) return refused(path);
  SideFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st;
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) return refused(path);
  for (const auto& d : dirs) {
    struct stat ds;
    if (::stat(d.c_str(), &ds) == 0 && ds.st_dev == st.st_dev && ds.st_ino == st.st_ino) return fd;
  }
  return refused(path);
}

}  // namespace

std::vector<std::string> default_side_file_dirs(const std::string& model_path) {
  std::vector<std::string> dirs;
  const fs::path folder = fs::path(model_path).parent_path();
  dirs.push_back(folder.empty() ? "." : folder.string());
  std::string cache;
  if (const char* c = std::getenv("SPECD_CACHE"); c && *c) {
    cache = c;
  } else {
    const char* home = std::getenv("HOME");
    cache = std::string(home ? home : "") + "/.cache/specd";
  }
  dirs.push_back(cache + "/models");
  dirs.push_back(cache + "/models/smoke");
  return dirs;
}

SideFd::~SideFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<SideFd> open_side_file(const std::vector<std::string>& dirs, const std::string& path, std::string* canonical) {
  const std::string real = resolve(path);
  if (real.empty()) {
    // Only a path whose (resolved) folder is allowed may learn that its file is missing; a dangling
    // symlink there is refused like any other way out.
    std::error_code ec;
    const fs::path lexical = fs::absolute(fs::path(path), ec).lexically_normal();
    if (ec || path.empty()) return refused(path);
    auto dir = open_allowed_folder(dirs, resolve(lexical.parent_path().string()), path);
    if (!dir) return dir.error();
    struct stat st;
    if (::fstatat(dir->get(), lexical.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
      return refused(path);
    return make_error(SPECD_E_IO, "side file %s: no such file", path.c_str());
  }
  const fs::path rp(real);
  auto dir = open_allowed_folder(dirs, rp.parent_path().string(), path);
  if (!dir) return dir.error();
  // O_NONBLOCK: a FIFO put there must not hang the engine thread in open().
  SideFd fd(::openat(dir->get(), rp.filename().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return make_error(SPECD_E_IO, "side file %s: %s", path.c_str(), std::strerror(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return make_error(SPECD_E_IO, "side file %s: not a regular file", path.c_str());
  if (canonical) *canonical = real;
  return fd;
}

}  // namespace specd::daemon
