// The example config printed by `specd serve --print-config` (see example_config.h).
#include "daemon/example_config.h"

#include "specd_toml_template.h"  // kSpecdTomlTemplate: packaging/specd.toml.in, made by daemon/meson.build

#ifndef SPECD_SYSCONFDIR
#define SPECD_SYSCONFDIR "/usr/local/etc"
#endif
#ifndef SPECD_DATADIR
#define SPECD_DATADIR "/usr/local/share"
#endif
#ifndef SPECD_INSTALLED_PLUGIN_DIR
#define SPECD_INSTALLED_PLUGIN_DIR "/usr/local/lib/specd/decoders"
#endif

namespace specd::daemon {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

// The whole line that starts with prefix, replaced by text (which ends in '\n' or is empty).
void replace_line(std::string& s, const std::string& prefix, const std::string& text) {
  const size_t at = s.find("\n" + prefix);
  if (at == std::string::npos) return;
  const size_t end = s.find('\n', at + 1);
  s.replace(at + 1, end == std::string::npos ? std::string::npos : end - at, text);
}

// A TOML basic string: quotes and backslashes escaped (paths may hold either).
std::string quoted(const std::string& v) {
  std::string q = "\"";
  for (const char ch : v) {
    if (ch == '"' || ch == '\\') q += '\\';
    q += ch;
  }
  return q + "\"";
}

}  // namespace

std::string example_config(const DefaultPaths& paths, const Config& cfg) {
  std::string s = kSpecdTomlTemplate;
  if (!cfg.models.empty()) {
    std::string models;
    for (const auto& [name, path] : cfg.models) models += name + " = " + quoted(path) + "\n";
    replace_line(s, "stories260K = ", models);
    replace_line(s, "default_model = ", "default_model = " + quoted(cfg.default_model) + "\n");
  }
  replace_all(s, "\"@SPECD_SOCKET@\"", quoted(paths.socket));
  replace_all(s, "\"@SPECD_RUNLOG@\"", quoted(paths.runlog));
  replace_all(s, "@SPECD_SYSCONFDIR@", SPECD_SYSCONFDIR);
  replace_all(s, "@SPECD_DATADIR@", SPECD_DATADIR);
  replace_all(s, "@SPECD_PLUGINDIR@", SPECD_INSTALLED_PLUGIN_DIR);
  return s;
}

}  // namespace specd::daemon
