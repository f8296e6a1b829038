// Which side files a decoder may open: only files lying directly in a directory the admin allowed.
//
// A client names side files in its request (redrafter's drafter=PATH), so the path is untrusted.
// It is resolved with realpath, so neither symlinks nor ".." can leave the allowed directories, and
// the file must lie directly in one of them (subfolders are not included: list them too). A path
// that resolves elsewhere is refused with SPECD_E_ACCESS, and so is one that does not resolve unless
// its folder is allowed: the answer is the same whether or not the file exists, and the file is never
// opened, so nothing about files outside the allowed directories can be learned through a request.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace specd::daemon {

struct SideFilePolicy {
  std::vector<std::string> dirs;               // empty: default_side_file_dirs(model path)
  uint64_t max_bytes = uint64_t{256} << 20;    // a side file is read whole into memory, at most this
};

// The model file's folder, then <cache>/models and <cache>/models/smoke, where <cache> is
// $SPECD_CACHE, else ~/.cache/specd (where scripts/train.sh puts drafters; redrafter's default
// lookup searches the same places). Reads the environment when called.
std::vector<std::string> default_side_file_dirs(const std::string& model_path);

// An open, read-only descriptor of an allowed regular file; closed by the destructor.
class SideFd {
 public:
  explicit SideFd(int fd) : fd_(fd) {}
  SideFd(SideFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  SideFd& operator=(SideFd&&) = delete;
  ~SideFd();
  int get() const { return fd_; }

 private:
  int fd_;
};

// Open path if it resolves to a regular file directly inside one of dirs; *canonical gets its
// resolved path. The folder is opened and compared with the allowed ones by device and inode, and
// the file opened relative to it with O_NOFOLLOW, so a symlink swapped in after realpath is not
// followed. Relative entries of dirs are taken from the working directory. Errors: SPECD_E_ACCESS when it lies outside
// dirs (whether or not it exists), SPECD_E_IO when an allowed path is missing, unreadable or not a
// regular file; messages name the path, never anything read from the file.
Result<SideFd> open_side_file(const std::vector<std::string>& dirs, const std::string& path, std::string* canonical);

}  // namespace specd::daemon
