// `specd serve`: read the config and flags, load the models, open the run log and the socket, serve.
#include "daemon/serve_command.h"

#include "cli/cli_args.h"
#include "cli/command_line.h"
#include "daemon/config.h"
#include "daemon/early_stop.h"
#include "daemon/example_config.h"
#include "daemon/log.h"
#include "daemon/model_loading.h"
#include "daemon/runtime_setup.h"
#include "daemon/serve_help.h"
#include "daemon/serve_paths.h"
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

// The file (if any), then the flags over it. Without --config and without a model flag (--model or
// -m) it is the service's file; when that cannot be read, the error says how to go on without it.
Result<Config> read_config(int argc, char** argv) {
  Config cfg;
  auto args = cli::CliArgs::parse(argc, argv, serve_options(), {"print-config"});
  if (!args) return args.error();
  const bool given = args->has("config");
  if (given || !args->has("model")) {
    auto file = load_config(given ? args->str("config") : kDefaultConfig);
    if (!file && !given && file.error().code == SPECD_E_IO)
      return make_error(SPECD_E_INVALID_ARG,
                        "no model to serve: give --model NAME=PATH (-m) or --config FILE (%s; `specd serve --print-config` "
                        "prints a config to start from)", file.error().message.c_str());
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
    auto m = load_model_with_progress(name, path, cfg.threads);
    if (!m) return m.error();
    w.models.emplace(name, std::move(m.value()));
    const auto own = cfg.model_devices.find(name);
    w.devices[name] = own != cfg.model_devices.end() ? own->second : cfg.device;
    const auto mem = cfg.model_device_memory.find(name);
    w.device_memory[name] = mem != cfg.model_device_memory.end() ? mem->second : cfg.device_memory;
  }
  w.default_model = cfg.default_model;
  w.plugin_dirs = plugin_dirs_with_defaults(cfg.plugin_dirs);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  w.threads = cfg.threads > 0 ? cfg.threads : hw;
  w.max_concurrent = cfg.limits.max_concurrent;
  w.max_queued = cfg.limits.max_queued;
  w.kv_bytes = cfg.limits.kv_bytes;
  w.plugin_bytes = cfg.limits.plugin_bytes;
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

// `--print-config`: the flags over the built-in defaults (no file is read), as a commented config.
int print_config(int argc, char** argv, const DefaultPaths& paths) {
  Config cfg;
  if (auto st = apply_flags(cfg, argc, argv); !st) return fail(2, st.error().message);
  std::fputs(example_config(paths, cfg).c_str(), stdout);
  return 0;
}

// The default socket and run-log places, and their directories when missing.
Status prepare_paths(Config& cfg, const DefaultPaths& paths) {
  apply_default_paths(cfg, paths);
  if (!PathEnv::from_environment().listen_fds) SPECD_TRY(make_parent_dirs(cfg.socket_path, socket_dir_mode(paths)));
  return make_parent_dirs(cfg.runlog_path, kRunlogDirMode);
}

}  // namespace

int serve_command(int argc, char** argv) {
  const DefaultPaths paths = default_paths(PathEnv::from_environment());
  // The command line is checked before the config file is read, so an unknown option is named as
  // such rather than reported as a missing config.
  int exit_code = 0;
  const std::string help = serve_help(paths);
  const auto args = cli::parse_command_line("specd serve", help.c_str(), argc, argv, serve_options(), {"print-config"}, &exit_code);
  if (!args) return exit_code;
  if (args->has("print-config")) return print_config(argc, argv, paths);
  auto cfg = read_config(argc, argv);
  if (!cfg) return fail(2, cfg.error().message);
  set_log_level(cfg->log_level);
  if (auto st = prepare_paths(*cfg, paths); !st) return fail(1, st.error().message);
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
  // From listen() on a client can connect and ask for a stop before the loop watches for one.
  hold_stop_signals();
  auto sock = open_listen_socket(cfg->socket_path, cfg->socket_mode);
  if (!sock) return fail(1, sock.error().message);
  const std::string bound = sock->path;
  auto server = Server::create(*cfg, std::move(opts.value()), *runlog.value(), sock.value());
  if (!server) {
    if (!bound.empty()) ::unlink(bound.c_str());
    return fail(1, server.error().message);
  }
  replay_held_stop_signals();  // the loop's watchers see them: the drain starts when it runs
  const int rc = server.value()->run();
  server.value().reset();
  runlog.value().reset();  // flushes and joins the writer
  std::fprintf(stderr, "specd: stopped\n");
  return rc;
}

}  // namespace specd::daemon
