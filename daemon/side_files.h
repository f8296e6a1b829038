// Side files: GGUF files a decoder attaches beside the model (a drafter's weights), read once.
//
// Requests create decoder instances all the time; the weights they attach must not be re-read per
// request. Files are keyed by path, size and modification time, so a retrained drafter written
// over the old one is picked up by the next request while running requests keep the old copy.
//
// A side file is named by a client, so it is opened through open_side_file (side_file_policy.h:
// only the allowed directories) and read whole into memory the daemon owns, never mapped: a file
// truncated or rewritten underneath a run cannot fault the process (SIGBUS) or change the weights a
// run uses. Side files are small (a drafter is well under 1 MB); max_bytes caps what one may cost.
// The model itself stays mapped (engine/model.h): it is the admin's file, named in the config.
#pragma once

#include "daemon/side_file_policy.h"
#include "engine/gguf_reader.h"
#include "kernels/result.h"

#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace specd::daemon {

class SideFiles {
 public:
  // dirs: where side files may come from (already defaulted by the caller); max_bytes: the size cap.
  SideFiles(std::vector<std::string> dirs, uint64_t max_bytes) : dirs_(std::move(dirs)), max_bytes_(max_bytes) {}

  // The file at path, parsed from a private copy. Errors, all naming the path and never the file's
  // bytes: SPECD_E_ACCESS (outside the allowed directories, whether or not it exists), SPECD_E_IO
  // (missing, unreadable, not a regular file, or changed while being read), SPECD_E_LIMIT (larger
  // than max_bytes), SPECD_E_BAD_MODEL (not valid GGUF).
  Result<std::shared_ptr<const engine::GgufFile>> open(const std::string& path);
  size_t size() const { return files_.size(); }
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  using Key = std::tuple<std::string, uintmax_t, int64_t>;  // canonical path, size, mtime (ns)
  std::vector<std::string> dirs_;
  uint64_t max_bytes_;
  std::map<Key, std::shared_ptr<const engine::GgufFile>> files_;
};

}  // namespace specd::daemon
