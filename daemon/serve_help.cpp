// The text of `specd serve --help`, its defaults taken from Config and DefaultPaths.
#include "daemon/serve_help.h"

#include "daemon/config.h"
#include "daemon/runtime_setup.h"

#include <cstdarg>
#include <cstdio>

namespace specd::daemon {
namespace {

// One flag's line: the flag and its argument padded to a column, then its meaning.
void line(std::string& out, const char* flag, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void line(std::string& out, const char* flag, const char* fmt, ...) {
  char text[640];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  char row[760];
  std::snprintf(row, sizeof row, "  %-30s %s\n", flag, text);
  out += row;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) {
    if (!s.empty()) s += ':';
    s += e;
  }
  return s;
}

}  // namespace

std::string serve_help(const DefaultPaths& paths) {
  const Config c;
  const Limits& l = c.limits;
  std::string h = "usage: specd serve [--config PATH] [--model NAME=PATH ...] [options]\n";
  line(h, "--config PATH", "TOML config (default /etc/specd/specd.toml; optional when --model is given)");
  line(h, "--print-config", "print a commented config with every setting and its default, then exit");
  line(h, "--model NAME=PATH", "a model to serve (repeatable; replaces the config's [models])");
  line(h, "--default-model NAME", "the model a request without one gets (default: the first)");
  line(h, "--socket PATH", "the Unix socket (default %s; ignored under socket activation)", paths.socket.c_str());
  line(h, "--socket-mode MODE", "its permissions, octal (default %04o)", c.socket_mode);
  line(h, "--runlog PATH", "the SQLite run log (default %s)", paths.runlog.c_str());
  line(h, "--log-level LEVEL", "error, warn, info or debug (default info); stderr, which journald keeps");
  line(h, "--plugin-dir DIR", "more decoders, looked at before the built-in ones (repeatable; adds to");
  line(h, "", "the config's list; built-in: %s)", joined(default_plugin_dirs()).c_str());
  line(h, "--side-file-dir DIR", "where side files (drafter=PATH) may come from (repeatable; replaces");
  line(h, "", "the config's list; default: each model's folder and $SPECD_CACHE/models)");
  line(h, "-t, --threads N", "compute threads (default 0: all cores)");
  line(h, "--device D", "auto (default: the GPU when built with CUDA and one is present, else the CPU),");
  line(h, "", "cpu, cuda, cuda:N; the config may name one per model");
  line(h, "--drain-grace-s S", "on SIGTERM, how long in-flight runs may take before they are cancelled (default %g)", c.drain_grace_s);
  line(h, "--kv-bytes N", "KV cache memory, split evenly between the models (default %llu)",
       static_cast<unsigned long long>(l.kv_bytes));
  line(h, "--max-frame-bytes N", "largest request frame (default %u)", l.max_frame_bytes);
  line(h, "--max-connections N", "connections open at once (default %d)", l.max_connections);
  line(h, "--max-concurrent N", "sequences decoding at once (default %d)", l.max_concurrent);
  line(h, "--max-queued N", "requests waiting for a slot (default %d)", l.max_queued);
  line(h, "--max-tokens-limit N", "the most tokens one request may ask for, not a length (default %d)", l.max_tokens);
  line(h, "", "(--max-tokens is the old spelling)");
  line(h, "--max-side-file-bytes N", "largest side file (default %llu)", static_cast<unsigned long long>(l.max_side_file_bytes));
  line(h, "--plugin-bytes N", "memory one model's decoders may allocate through the host (default %llu)",
       static_cast<unsigned long long>(l.plugin_bytes));
  line(h, "--max-requests-per-connection N", "Generates in flight on one connection (default %d)", l.max_requests_per_connection);
  line(h, "--max-connections-per-uid N", "one user's connections (default %d)", l.max_connections_per_uid);
  line(h, "--max-requests-per-uid N", "one user's Generates in flight (default %d)", l.max_requests_per_uid);
  line(h, "--handshake-timeout-ms MS", "from accept to Hello (default %d)", l.handshake_timeout_ms);
  line(h, "--idle-timeout-ms MS", "an idle connection is closed after this; 0 never (default %d)", l.idle_timeout_ms);
  line(h, "--http ADDR", "serve the OpenAI-compatible HTTP API on ADDR (repeatable; default none):");
  line(h, "", "127.0.0.1:8080, [::1]:8080, unix:/path/http.sock; non-loopback needs an API key");
  line(h, "--api-key-file PATH", "the HTTP API key (its first line), required as \"Authorization: Bearer KEY\"");
  line(h, "-h, --help", "this text;  --version  the version");
  h += "Default places (";
  h += paths.reason;
  h += "): a normal user's socket is in $XDG_RUNTIME_DIR/specd, its run log in $XDG_STATE_HOME/specd\n"
       "(~/.local/state/specd); root and systemd units use /run/specd and /var/lib/specd\n"
       "($RUNTIME_DIRECTORY/$STATE_DIRECTORY when set). Missing directories are made: a user's with mode\n"
       "0700, root's socket directory 0755 (so the socket's group can reach it).\n"
       "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP rescans the plugin directories.\n";
  return h;
}

}  // namespace specd::daemon
