// Side files: GGUF files a decoder attaches beside the model (a drafter's weights), mapped once.
//
// Requests create decoder instances all the time; the weights they attach must not be re-read per
// request. Files are keyed by path, size and modification time, so a retrained drafter written
// over the old one is picked up by the next request while running requests keep the old mapping.
#pragma once

#include "engine/gguf_reader.h"
#include "engine/result.h"

#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace specd::daemon {

class SideFiles {
 public:
  // The mapped file at path. Errors: SPECD_E_IO (cannot read), SPECD_E_BAD_MODEL (not valid GGUF),
  // with the path in the message.
  Result<std::shared_ptr<const engine::GgufFile>> open(const std::string& path);
  size_t size() const { return files_.size(); }

 private:
  using Key = std::tuple<std::string, uintmax_t, int64_t>;  // canonical path, size, mtime
  std::map<Key, std::shared_ptr<const engine::GgufFile>> files_;
};

}  // namespace specd::daemon
