// PluginRegistry: finds decoder plugins in directories, vets and dlopens them, looks them up by name.
//
// A plugin is refused (with a log line saying why) when its file or directory is writable by
// anyone other than root or the daemon's user, when it lacks specd_decoder_entry, when its ABI
// major or pointer size differs from the host's, when a required slot is NULL, or when its name is
// taken. Refusals never stop the others from loading.
#pragma once

#include "kernels/result.h"

#include <specd/decoder.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace specd::daemon {

struct LoadedDecoder {
  std::string name;
  std::string path;
  const specd_decoder* desc = nullptr;
};

class PluginRegistry {
 public:
  PluginRegistry();
  ~PluginRegistry();  // dlcloses everything
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  // Load every "*.so" in dir (not recursive), in name order. Each refusal appends one line
  // ("refused PATH: reason") to log when log is not NULL. Returns the number loaded.
  int load_dir(const std::string& dir, std::vector<std::string>* log);
  // Load one file. Errors: SPECD_E_IO (cannot stat/dlopen), SPECD_E_VERSION (ABI major or pointer
  // size), SPECD_E_PLUGIN (missing symbol, NULL descriptor or slot, bad name, duplicate name),
  // SPECD_E_INVALID_ARG (unsafe permissions).
  Status load_file(const std::string& path);

  const LoadedDecoder* find(std::string_view name) const;
  std::vector<const LoadedDecoder*> list() const;

 private:
  struct Handle;
  std::vector<std::unique_ptr<Handle>> handles_;
};

// Why path (a plugin file or its directory) is unsafe to load, or "" when it is fine: writable by
// group or others (unless the group is root's or ours), or owned by someone other than root or us.
std::string unsafe_permissions(const std::string& path);

}  // namespace specd::daemon
