#include "daemon/side_files.h"

#include <filesystem>
#include <system_error>

namespace specd::daemon {

Result<std::shared_ptr<const engine::GgufFile>> SideFiles::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path canon = fs::canonical(path, ec);
  if (ec) return make_error(SPECD_E_IO, "%s: %s", path.c_str(), ec.message().c_str());
  const uintmax_t size = fs::file_size(canon, ec);
  if (ec) return make_error(SPECD_E_IO, "%s: %s", path.c_str(), ec.message().c_str());
  const auto mtime = fs::last_write_time(canon, ec).time_since_epoch().count();
  if (ec) return make_error(SPECD_E_IO, "%s: %s", path.c_str(), ec.message().c_str());
  const Key key{canon.string(), size, static_cast<int64_t>(mtime)};
  if (auto it = files_.find(key); it != files_.end()) return it->second;
  auto f = engine::GgufFile::open(canon.string());
  if (!f) return Error{f.error().code, path + ": " + f.error().message};
  // Drop older versions of the same path; requests still using them hold their own reference.
  std::erase_if(files_, [&](const auto& kv) { return std::get<0>(kv.first) == canon.string(); });
  std::shared_ptr<const engine::GgufFile> shared = std::move(f.value());
  files_.emplace(key, shared);
  return shared;
}

}  // namespace specd::daemon
