// Config: the `specd serve` flags, applied over what the file (or the defaults) said.
#include "daemon/config.h"

#include "cli/cli_args.h"
#include "kernels/device.h"

#include <cstdlib>
#include <limits>

namespace specd::daemon {
namespace {

// --model NAME=PATH (or just PATH: the name is the file's stem, "stories260K" for stories260K.gguf).
Status apply_model_flags(Config& cfg, const std::vector<std::string>& items) {
  std::map<std::string, std::string> models;
  std::string first;
  for (const auto& item : items) {
    const size_t eq = item.find('=');
    std::string name, path = item;
    if (eq != std::string::npos) {
      name = item.substr(0, eq);
      path = item.substr(eq + 1);
    } else {
      const size_t slash = item.rfind('/');
      name = item.substr(slash == std::string::npos ? 0 : slash + 1);
      name = name.substr(0, name.rfind('.'));
    }
    if (name.empty() || path.empty())
      return make_error(SPECD_E_INVALID_ARG, "--model expects NAME=PATH, got '%s'", item.c_str());
    if (!models.emplace(name, path).second)
      return make_error(SPECD_E_INVALID_ARG, "--model: the name '%s' is given twice", name.c_str());
    if (first.empty()) first = name;
  }
  cfg.models = std::move(models);
  if (!cfg.models.count(cfg.default_model)) cfg.default_model = first;
  return {};
}

template <class T>
Status flag_int(const cli::CliArgs& a, const char* name, T& field, int64_t lo, int64_t hi) {
  auto v = a.integer(name, static_cast<int64_t>(field), lo, hi);
  if (!v) return v.error();
  field = static_cast<T>(v.value());
  return {};
}

Status apply_limit_flags(const cli::CliArgs& a, Limits& l) {
  SPECD_TRY(flag_int(a, "max-frame-bytes", l.max_frame_bytes, 1024, int64_t{1} << 30));
  SPECD_TRY(flag_int(a, "max-connections", l.max_connections, 1, 1000000));
  SPECD_TRY(flag_int(a, "max-concurrent", l.max_concurrent, 1, 4096));
  SPECD_TRY(flag_int(a, "max-queued", l.max_queued, 0, 1000000));
  // --max-tokens-limit is the documented name (a cap on every request, not a length as `generate
  // --max-tokens` is); --max-tokens, its first spelling, keeps working.
  SPECD_TRY(flag_int(a, a.has("max-tokens-limit") ? "max-tokens-limit" : "max-tokens", l.max_tokens, 1, 1 << 24));
  SPECD_TRY(flag_int(a, "max-side-file-bytes", l.max_side_file_bytes, 1024, int64_t{1} << 40));
  SPECD_TRY(flag_int(a, "plugin-bytes", l.plugin_bytes, int64_t{1} << 20, std::numeric_limits<int64_t>::max()));
  SPECD_TRY(flag_int(a, "max-requests-per-connection", l.max_requests_per_connection, 1, 1000000));
  SPECD_TRY(flag_int(a, "max-connections-per-uid", l.max_connections_per_uid, 1, 1000000));
  SPECD_TRY(flag_int(a, "max-requests-per-uid", l.max_requests_per_uid, 1, 1000000));
  SPECD_TRY(flag_int(a, "handshake-timeout-ms", l.handshake_timeout_ms, 1, 3600000));
  SPECD_TRY(flag_int(a, "idle-timeout-ms", l.idle_timeout_ms, 0, std::numeric_limits<int32_t>::max()));
  return flag_int(a, "kv-bytes", l.kv_bytes, int64_t{1} << 20, std::numeric_limits<int64_t>::max());
}

}  // namespace

const std::set<std::string>& serve_options() {
  static const std::set<std::string> options = {
      "config", "model", "default-model", "socket", "socket-mode", "runlog", "plugin-dir", "threads", "drain-grace-s",
      "max-frame-bytes", "max-connections", "max-concurrent", "max-queued", "max-tokens-limit", "max-tokens",
      "max-requests-per-connection", "max-connections-per-uid", "max-requests-per-uid", "handshake-timeout-ms",
      "idle-timeout-ms", "kv-bytes", "side-file-dir", "max-side-file-bytes", "device", "http", "api-key-file",
      "log-level", "plugin-bytes"};
  return options;
}

Status apply_flags(Config& cfg, int argc, char** argv) {
  auto args = cli::CliArgs::parse(argc, argv, serve_options(), {"print-config"});
  if (!args) return args.error();
  const cli::CliArgs& a = *args;
  if (a.has("model")) SPECD_TRY(apply_model_flags(cfg, a.all("model")));
  if (a.has("default-model")) {
    if (!cfg.models.count(a.str("default-model")))
      return make_error(SPECD_E_INVALID_ARG, "--default-model '%s' is not a configured model", a.str("default-model").c_str());
    cfg.default_model = a.str("default-model");
  }
  cfg.socket_path = a.str("socket", cfg.socket_path);
  cfg.runlog_path = a.str("runlog", cfg.runlog_path);
  // Extra decoder directories go before the file's, which go before the built-in one (serve_command).
  if (a.has("plugin-dir")) {
    std::vector<std::string> dirs = a.all("plugin-dir");
    dirs.insert(dirs.end(), cfg.plugin_dirs.begin(), cfg.plugin_dirs.end());
    cfg.plugin_dirs = std::move(dirs);
  }
  if (a.has("side-file-dir")) cfg.side_file_dirs = a.all("side-file-dir");  // likewise
  if (a.has("http")) cfg.http.listen = a.all("http");  // likewise
  if (a.has("api-key-file")) cfg.http.api_key_file = a.str("api-key-file");
  if (a.has("device")) {
    if (auto d = kernels::parse_device(a.str("device")); !d) return make_error(d.error().code, "--device: %s", d.error().message.c_str());
    cfg.device = a.str("device");
  }
  if (a.has("socket-mode")) {
    const std::string t = a.str("socket-mode");
    char* end = nullptr;
    const long m = std::strtol(t.c_str(), &end, 8);
    if (t.empty() || *end || m < 0 || m > 0777)
      return make_error(SPECD_E_INVALID_ARG, "--socket-mode must be an octal mode such as 0660, got '%s'", t.c_str());
    cfg.socket_mode = static_cast<uint32_t>(m);
  }
  if (a.has("log-level")) {
    auto level = parse_log_level(a.str("log-level"));
    if (!level) return make_error(level.error().code, "--log-level: %s", level.error().message.c_str());
    cfg.log_level = *level;
  }
  SPECD_TRY(flag_int(a, "threads", cfg.threads, 0, 1024));
  auto grace = a.number("drain-grace-s", cfg.drain_grace_s, 0.0, 86400.0);
  if (!grace) return grace.error();
  cfg.drain_grace_s = grace.value();
  return apply_limit_flags(a, cfg.limits);
}

}  // namespace specd::daemon
