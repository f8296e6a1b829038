// `specd serve`: read the config and flags, load the models, open the run log and the socket, serve.
#include "daemon/serve_command.h"

#include "daemon/command_line.h"
#include "daemon/config.h"
#include "daemon/runtime_setup.h"
#include "daemon/server.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>
#include <unistd.h>

namespace specd::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/specd/specd.toml";

constexpr const char* kHelp =
    "usage: specd serve [--config PATH] [--model NAME=PATH ...] [options]\n"
    "  --config PATH          TOML config (default /etc/specd/specd.toml; optional when --model is given)\n"
    "  --model NAME=PATH      a model to serve (repeatable; replaces the config's [models])\n"
    "  --default-model NAME   the model a request without one gets (default: the first)\n"
    "  --socket PATH          the Unix socket (ignored under systemd socket activation)\n"
    "  --socket-mode MODE     its permissions, octal (default 0660)\n"
    "  --runlog PATH          the SQLite run log\n"
    "  --plugin-dir DIR       where decoders are (repeatable; replaces the config's list)\n"
    "  --side-file-dir DIR    where decoders' side files (drafter=PATH) may come from (repeatable; replaces\n"
    "                         the config's list; default: each model's folder and $SPECD_CACHE/models)\n"
    "  -t, --threads N        compute threads (0 = all cores)\n"
    "  --device D             where models run unless the config names one for a model: auto (default: the\n"
    "                         GPU when this build has CUDA and one is present, else the CPU), cpu, cuda, cuda:N\n"
    "  --drain-grace-s S      on SIGTERM, how long in-flight runs may take before they are cancelled\n"
    "  --max-tokens-limit N   the most tokens one request may ask for ([limits] max_tokens; --max-tokens is\n"
    "                         the old spelling); not a length: clients choose that\n"
    "  --max-frame-bytes N --max-connections N --max-concurrent N --max-queued N --kv-bytes N\n"
    "  --max-side-file-bytes N\n"
    "  --max-requests-per-connection N --max-connections-per-uid N --max-requests-per-uid N\n"
    "  --handshake-timeout-ms MS --idle-timeout-ms MS\n"
    "  --http ADDR            serve the OpenAI-compatible HTTP API on ADDR (repeatable; replaces [http] listen):\n"
    "                         127.0.0.1:8080, [::1]:8080, unix:/run/specd/http.sock; a non-loopback address\n"
    "                         needs an API key\n"
    "  --api-key-file PATH    the HTTP API key (its first line), required as \"Authorization: Bearer KEY\" on TCP\n"
    "  -h, --help             this text;  --version  the version\n"
    "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP rescans the plugin directories.\n";

bool has_flag(int argc, char** argv, const char* name) {
  const size_t n = std::strlen(name);
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], name, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '=')) return true;
  return false;
}

std::string flag_value(int argc, char** argv, const char* name) {
  const size_t n = std::strlen(name);
  std::string v;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], name, n) != 0) continue;
    if (argv[i][n] == '=') v = argv[i] + n + 1;
    else if (argv[i][n] == '\0' && i + 1 < argc) v = argv[i + 1];
  }
  return v;
}

// The file (if any), then the flags over it.
Result<Config> read_config(int argc, char** argv) {
  Config cfg;
  if (has_flag(argc, argv, "--config") || !has_flag(argc, argv, "--model")) {
    const std::string path = has_flag(argc, argv, "--config") ? flag_value(argc, argv, "--config") : kDefaultConfig;
    auto file = load_config(path);
    if (!file) return file.error();
    cfg = std::move(file.value());
  }
  SPECD_TRY(apply_flags(cfg, argc, argv));
  SPECD_TRY(finish_http_config(cfg));
  if (cfg.models.empty())
    return make_error(SPECD_E_INVALID_ARG, "no model to serve: give --model NAME=PATH or a [models] section in %s",
                      cfg.source.c_str());
  return cfg;
}

Result<WorkerOptions> load_models(const Config& cfg) {
  WorkerOptions w;
  for (const auto& [name, path] : cfg.models) {
    auto m = engine::Model::load(path);
    if (!m) return make_error(m.error().code, "cannot load model '%s' from %s: %s", name.c_str(), path.c_str(), m.error().message.c_str());
    w.models.emplace(name, std::move(m.value()));
    const auto own = cfg.model_devices.find(name);
    w.devices[name] = own != cfg.model_devices.end() ? own->second : cfg.device;
    const auto mem = cfg.model_device_memory.find(name);
    w.device_memory[name] = mem != cfg.model_device_memory.end() ? mem->second : cfg.device_memory;
  }
  w.default_model = cfg.default_model;
  w.plugin_dirs = cfg.plugin_dirs.empty() ? default_plugin_dirs() : cfg.plugin_dirs;
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  w.threads = cfg.threads > 0 ? cfg.threads : hw;
  w.max_concurrent = cfg.limits.max_concurrent;
  w.max_queued = cfg.limits.max_queued;
  w.kv_bytes = cfg.limits.kv_bytes;
  w.side_files = {cfg.side_file_dirs, cfg.limits.max_side_file_bytes};
  return w;
}

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "specd serve: %s\n", message.c_str());
  char status[300];
  std::snprintf(status, sizeof status, "STATUS=failed: %s", message.c_str());
  sd_notify(0, status);
  return code;
}

}  // namespace

int serve_command(int argc, char** argv) {
  // The command line is checked before the config file is read, so an unknown option is named as
  // such rather than reported as a missing config.
  int exit_code = 0;
  if (!parse_command_line("specd serve", kHelp, argc, argv, serve_options(), {}, &exit_code)) return exit_code;
  auto cfg = read_config(argc, argv);
  if (!cfg) return fail(2, cfg.error().message);
  // A client that hangs up mid-write must cost an EPIPE on that connection, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  sd_notify(0, "STATUS=loading models");
  auto opts = load_models(*cfg);
  if (!opts) return fail(1, opts.error().message);
  RunLogOptions ro;
  ro.path = cfg->runlog_path;
  ro.max_rows = cfg->runlog_max_rows;
  ro.max_age_days = cfg->runlog_max_age_days;
  ro.sync_full = cfg->runlog_sync_full;
  auto runlog = RunLog::open(ro);
  if (!runlog) return fail(1, "run log " + cfg->runlog_path + ": " + runlog.error().message);
  if (const int64_t n = runlog.value()->interrupted_at_open(); n > 0)
    std::fprintf(stderr, "specd: run log: %lld run(s) were in flight when the daemon last stopped; marked interrupted\n",
                 static_cast<long long>(n));
  auto sock = open_listen_socket(cfg->socket_path, cfg->socket_mode);
  if (!sock) return fail(1, sock.error().message);
  const std::string bound = sock->path;
  auto server = Server::create(*cfg, std::move(opts.value()), *runlog.value(), sock.value());
  if (!server) {
    if (!bound.empty()) ::unlink(bound.c_str());
    return fail(1, server.error().message);
  }
  const int rc = server.value()->run();
  server.value().reset();
  runlog.value().reset();  // flushes and joins the writer
  std::fprintf(stderr, "specd: stopped\n");
  return rc;
}

}  // namespace specd::daemon
