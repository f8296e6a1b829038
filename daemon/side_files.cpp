#include "daemon/side_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace specd::daemon {
namespace {

int64_t mtime_ns(const struct stat& st) { return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec; }

// The bytes a parsed side file points into; aligned like a mapping would be, for the kernels.
struct Owned {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> bytes;
  std::unique_ptr<engine::GgufFile> file;
};

// Read exactly n bytes from the start of fd into out; false if the file ended early or failed.
bool read_all(int fd, uint8_t* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out + got, n - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<const engine::GgufFile>> SideFiles::open(const std::string& path) {
  std::string canon;
  auto fd = open_side_file(dirs_, path, &canon);
  if (!fd) return fd.error();
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return make_error(SPECD_E_IO, "side file %s: %s", path.c_str(), std::strerror(errno));
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes_)
    return make_error(SPECD_E_LIMIT, "side file %s has %llu bytes, more than limits.max_side_file_bytes (%llu)", path.c_str(),
                      static_cast<unsigned long long>(size), static_cast<unsigned long long>(max_bytes_));
  const Key key{canon, size, mtime_ns(st)};
  if (auto it = files_.find(key); it != files_.end()) return it->second;

  auto owned = std::make_shared<Owned>();
  const size_t alloc = (static_cast<size_t>(size) + 63) / 64 * 64 + 64;
  owned->bytes.reset(static_cast<uint8_t*>(std::aligned_alloc(64, alloc)));
  if (!owned->bytes) return make_error(SPECD_E_NOMEM, "side file %s: out of memory for %llu bytes", path.c_str(),
                                       static_cast<unsigned long long>(size));
  struct stat after;
  if (!read_all(fd->get(), owned->bytes.get(), static_cast<size_t>(size)) || ::fstat(fd->get(), &after) != 0 ||
      after.st_size != st.st_size || mtime_ns(after) != mtime_ns(st))
    return make_error(SPECD_E_IO, "side file %s changed while it was read; try again", path.c_str());
  auto f = engine::GgufFile::from_memory(owned->bytes.get(), static_cast<size_t>(size));
  if (!f) return Error{f.error().code, "side file " + path + ": " + f.error().message};
  owned->file = std::move(f.value());
  // Drop older versions of the same path; requests still using them hold their own reference.
  std::erase_if(files_, [&](const auto& kv) { return std::get<0>(kv.first) == canon; });
  std::shared_ptr<const engine::GgufFile> shared(owned, owned->file.get());  // keeps the bytes alive with it
  files_.emplace(key, shared);
  return shared;
}

}  // namespace specd::daemon
