// Plugin directory defaults for `specd generate` and `specd-bench`.
#include "daemon/runtime_setup.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#ifndef SPECD_INSTALLED_PLUGIN_DIR
#define SPECD_INSTALLED_PLUGIN_DIR "/usr/local/lib/specd/plugins"
#endif

namespace specd::daemon {
namespace fs = std::filesystem;

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("SPECD_PLUGIN_DIR"); env && *env) {
    std::string all = env;
    for (size_t start = 0; start <= all.size();) {
      const size_t colon = all.find(':', start);
      const std::string d = all.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!d.empty()) dirs.push_back(d);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    return dirs;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // In a build tree the executable is build/daemon/specd and the decoders build/plugins/*.so.
    const fs::path build_plugins = exe.parent_path().parent_path() / "plugins";
    if (fs::exists(build_plugins / "ar.so", ec)) return {build_plugins.string()};
  }
  dirs.push_back(SPECD_INSTALLED_PLUGIN_DIR);
  return dirs;
}

std::vector<std::string> plugin_dirs_with_defaults(const std::vector<std::string>& extra) {
  // One directory named two ways (build/plugins, /abs/build/plugins, the built-in one given again)
  // is searched once: a second search would only refuse each decoder as a duplicate of itself.
  const auto same_dir = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    return a == b || fs::equivalent(a, b, ec);
  };
  std::vector<std::string> dirs;
  for (const auto& list : {extra, default_plugin_dirs()})
    for (const auto& d : list)
      if (std::none_of(dirs.begin(), dirs.end(), [&](const std::string& x) { return same_dir(x, d); })) dirs.push_back(d);
  return dirs;
}

int load_plugin_dirs(PluginRegistry& reg, const std::vector<std::string>& dirs) {
  int n = 0;
  for (const auto& d : dirs) {
    std::vector<std::string> log;
    n += reg.load_dir(d, &log);
    for (const auto& line : log) std::fprintf(stderr, "specd: %s\n", line.c_str());
  }
  return n;
}

}  // namespace specd::daemon
