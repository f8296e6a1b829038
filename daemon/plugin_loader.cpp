// PluginRegistry: vets decoder plugin files (ownership, write bits), dlopens them and checks their descriptors.
#include "daemon/plugin_loader.h"

#include "daemon/elf_exports.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace specd::daemon {
namespace fs = std::filesystem;

namespace {

// The 1.0 descriptor ends with `end`. Spelled out rather than sizeof(specd_decoder) so that a later
// minor that appends slots keeps accepting 1.0 plugins.
constexpr size_t kDecoderSize10 = offsetof(specd_decoder, end) + sizeof(specd_decoder::end);
constexpr size_t kMaxNameLen = 64;

struct DlClose {
  void operator()(void* h) const {
    if (h) dlclose(h);
  }
};
using DlHandle = std::unique_ptr<void, DlClose>;

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlerror";
}

std::string mode_octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

bool valid_name(const char* name) {
  if (!name) return false;
  size_t n = 0;
  for (; name[n] != '\0'; ++n) {
    if (n >= kMaxNameLen) return false;
    const char c = name[n];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return n > 0;
}

// The first required slot that is NULL, or nullptr when all are set.
const char* null_required_slot(const specd_decoder* d) {
  if (!d->create) return "create";
  if (!d->destroy) return "destroy";
  if (!d->begin) return "begin";
  if (!d->plan) return "plan";
  if (!d->accept) return "accept";
  return nullptr;
}

// Checks everything the host relies on before it calls any slot. The head (struct_size, versions,
// pointer_size) is read first because SPECD_DECODER_HEAD keeps it stable across majors, so a
// plugin from another major gets the version message rather than a size complaint.
Status vet_descriptor(const specd_decoder* d) {
  if (!d) return make_error(SPECD_E_PLUGIN, "specd_decoder_entry returned NULL (the plugin declined host ABI %d.%d)",
                            SPECD_DECODER_ABI_MAJOR, SPECD_DECODER_ABI_MINOR);
  if (d->abi_major != SPECD_DECODER_ABI_MAJOR)
    return make_error(SPECD_E_VERSION, "built for decoder ABI %u.%u, host is %d.%d", d->abi_major, d->abi_minor,
                      SPECD_DECODER_ABI_MAJOR, SPECD_DECODER_ABI_MINOR);
  if (d->pointer_size != sizeof(void*))
    return make_error(SPECD_E_VERSION, "built with %u-byte pointers, host has %zu-byte pointers", d->pointer_size,
                      sizeof(void*));
  if (d->struct_size < kDecoderSize10)
    return make_error(SPECD_E_PLUGIN, "descriptor struct_size %u is smaller than the 1.0 descriptor (%zu)",
                      d->struct_size, kDecoderSize10);
  if (const char* slot = null_required_slot(d))
    return make_error(SPECD_E_PLUGIN, "required slot '%s' is NULL", slot);
  if (!valid_name(d->name))
    return make_error(SPECD_E_PLUGIN, "bad decoder name '%.80s' (want [a-z0-9_-]{1,64})", d->name ? d->name : "(null)");
  return {};
}

// The directories whose write bits decide who can swap the file: the one named and, when path is a
// symlink, the one holding the target.
Status check_permissions(const std::string& path, const std::string& real) {
  std::vector<std::string> paths = {real, fs::path(real).parent_path().string()};
  std::error_code ec;
  const fs::path named = fs::absolute(fs::path(path), ec);
  if (ec) return make_error(SPECD_E_IO, "cannot resolve %s: %s", path.c_str(), ec.message().c_str());
  const std::string named_dir = named.parent_path().lexically_normal().string();
  if (named_dir != paths[1]) paths.push_back(named_dir);
  for (const auto& p : paths)
    if (std::string why = unsafe_permissions(p); !why.empty()) return make_error(SPECD_E_INVALID_ARG, "%s", why.c_str());
  return {};
}

// Resolves symlinks and checks the target is a regular file, before any permission check or dlopen.
Result<std::string> resolve_plugin_path(const std::string& path) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) return make_error(SPECD_E_IO, "cannot resolve %s: %s", path.c_str(), ec.message().c_str());
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0)
    return make_error(SPECD_E_IO, "cannot stat %s: %s", real.c_str(), std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(SPECD_E_IO, "%s is not a regular file", real.c_str());
  return real.string();
}

}  // namespace

struct PluginRegistry::Handle {
  DlHandle dl;
  LoadedDecoder decoder;
};

PluginRegistry::PluginRegistry() = default;

// Unload in reverse load order, so the newest plugin goes first, like a stack of dlopens.
PluginRegistry::~PluginRegistry() {
  while (!handles_.empty()) handles_.pop_back();
}

Status PluginRegistry::load_file(const std::string& path) {
  auto real = resolve_plugin_path(path);
  if (!real) return real.error();
  // Permissions first: dlopen runs the library's constructors, so a file anyone could have written
  // must never reach it.
  SPECD_TRY(check_permissions(path, real.value()));
  // Then the symbol table, read without loading: a library that is no decoder plugin (a stray .so in
  // the directory) is refused before dlopen could run its constructors. One that does export the entry
  // point still runs its constructors at dlopen: the permission checks above are the trust boundary.
  auto exports = elf_exports_symbol(real.value(), "specd_decoder_entry");
  if (!exports) return exports.error();
  if (!exports.value()) return make_error(SPECD_E_PLUGIN, "no specd_decoder_entry symbol (not loaded)");

  DlHandle dl(dlopen(real.value().c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!dl) return make_error(SPECD_E_IO, "dlopen failed: %s", dl_error().c_str());
  dlerror();  // clear any stale error, so the message below is dlsym's own
  void* sym = dlsym(dl.get(), "specd_decoder_entry");
  if (!sym) return make_error(SPECD_E_PLUGIN, "no specd_decoder_entry symbol (%s)", dl_error().c_str());

  const auto entry = reinterpret_cast<specd_decoder_entry_fn>(sym);
  const specd_decoder* desc = entry(SPECD_DECODER_ABI_MAJOR, SPECD_DECODER_ABI_MINOR);
  SPECD_TRY(vet_descriptor(desc));
  if (const LoadedDecoder* other = find(desc->name))
    return make_error(SPECD_E_PLUGIN, "duplicate decoder name '%s' (already loaded from %s)", desc->name,
                      other->path.c_str());

  auto h = std::make_unique<Handle>();
  h->dl = std::move(dl);
  h->decoder = LoadedDecoder{desc->name, path, desc};
  handles_.push_back(std::move(h));
  return {};
}

int PluginRegistry::load_dir(const std::string& dir, std::vector<std::string>* log) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    // Directories named *.so are skipped; everything else (files, symlinks, dangling ones) goes to
    // load_file, which refuses with a reason rather than silently.
    std::error_code type_ec;
    if (p.extension() == ".so" && !it->is_directory(type_ec)) files.push_back(p);
  }
  if (ec) {
    if (log) log->push_back("refused " + dir + ": cannot list the directory: " + ec.message());
    return 0;
  }
  std::sort(files.begin(), files.end());
  int loaded = 0;
  for (const auto& f : files) {
    Status st = load_file(f.string());
    if (st) {
      ++loaded;
    } else if (log) {
      log->push_back("refused " + f.string() + ": " + st.error().message);
    }
  }
  return loaded;
}

const LoadedDecoder* PluginRegistry::find(std::string_view name) const {
  for (const auto& h : handles_)
    if (h->decoder.name == name) return &h->decoder;
  return nullptr;
}

std::vector<const LoadedDecoder*> PluginRegistry::list() const {
  std::vector<const LoadedDecoder*> out;
  out.reserve(handles_.size());
  for (const auto& h : handles_) out.push_back(&h->decoder);
  return out;
}

std::string unsafe_permissions(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "cannot stat " + path + ": " + std::strerror(errno);
  const std::string mode = mode_octal(st.st_mode);
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return path + " is owned by uid " + std::to_string(st.st_uid) + ", neither root nor the daemon's user (uid " +
           std::to_string(::geteuid()) + ")";
  if (st.st_mode & S_IWOTH) return path + " is writable by others (S_IWOTH, mode " + mode + ")";
  if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != ::getegid())
    return path + " is writable by group " + std::to_string(st.st_gid) + " (S_IWGRP, mode " + mode +
           "), neither root's group nor the daemon's (gid " + std::to_string(::getegid()) + ")";
  return "";
}

}  // namespace specd::daemon
