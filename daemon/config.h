// Config: the daemon's settings from a TOML file (default /etc/specd/specd.toml) and flags.
//
// Flags override the file. A malformed file, an unknown key or a bad value is a start-up error
// naming the file and line ("specd.toml:12: unknown key 'limits.max_frame'").
#pragma once

#include "daemon/log.h"
#include "kernels/result.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace specd::daemon {

struct Limits {
  uint32_t max_frame_bytes = 1u << 20;
  int32_t max_connections = 256;
  int32_t max_concurrent = 32;      // sequences decoding at once (in-flight batch)
  int32_t max_queued = 256;         // waiting for a slot
  int32_t max_tokens = 4096;        // per request
  int32_t max_requests_per_connection = 64;  // Generates in flight on one connection
  // One user's share (root and the daemon's own user are not limited): connections open at once and
  // Generates in flight over all of them, so one local user cannot take every slot or the queue.
  int32_t max_connections_per_uid = 64;
  int32_t max_requests_per_uid = 128;
  int32_t handshake_timeout_ms = 5000;       // from accept to Hello
  int32_t idle_timeout_ms = 300000;          // nothing in flight, nothing received; 0: never
  uint64_t kv_bytes = uint64_t{1} << 30;
  uint64_t max_side_file_bytes = uint64_t{256} << 20;  // a side file (drafter) is read whole into memory
  // What one model's decoders may hold through the host (mem_alloc, buf_create), all their
  // instances and sequences together; past it those calls fail, the request with them, not the daemon.
  uint64_t plugin_bytes = uint64_t{4} << 30;
};

// [http]: the OpenAI-compatible HTTP API (README "HTTP API"). Off unless listen has an address.
struct HttpConfig {
  std::vector<std::string> listen;   // "127.0.0.1:8080", "[::1]:8080", "unix:/run/specd/http.sock" (daemon/http_address.h)
  std::string api_key;               // required as "Authorization: Bearer KEY" on TCP listeners ("" none)
  std::string api_key_file;          // read at start-up (its first line), instead of api_key in the file
  uint64_t max_body_bytes = uint64_t{8} << 20;  // larger request bodies get 413
  int32_t request_timeout_ms = 10000;  // a request's head and body must arrive within this; idle keep-alive connections close after it
  int32_t max_connections = 256;       // HTTP connections open at once over every listener; past it: 503 and close
};

struct Config {
  std::string source = "defaults";         // the file it came from, for messages
  std::map<std::string, std::string> models;  // name → GGUF path
  std::string device = "auto";             // [daemon] device: where models run unless they say
  std::map<std::string, std::string> model_devices;  // name → device, for models given as { path, device }
  uint64_t device_memory = 0;              // [daemon] device_memory_bytes: a GPU model's device pool; 0 = estimate
  std::map<std::string, uint64_t> model_device_memory;  // name → its own device_memory_bytes
  std::string default_model;               // first model unless [daemon] default_model says
  std::vector<std::string> plugin_dirs;    // searched before the built-in directory, which is always searched
  // Where decoders' side files (drafter=PATH) may come from; empty: each model's folder and
  // $SPECD_CACHE/models (+ smoke/). See daemon/side_file_policy.h.
  std::vector<std::string> side_file_dirs;
  // "" until set: `specd serve` then takes clients/default_paths.h's place for this user or the
  // system service (daemon/serve_paths.h).
  std::string socket_path;
  uint32_t socket_mode = 0660;
  std::string runlog_path;                 // "" until set, like socket_path
  int64_t runlog_max_rows = 100000;
  int64_t runlog_max_age_days = 90;
  bool runlog_sync_full = false;           // [runlog] synchronous = "full": fsync every commit
  Limits limits;
  int32_t threads = 0;                     // 0: all cores
  LogLevel log_level = LogLevel::Info;     // [daemon] log_level, --log-level
  double drain_grace_s = 30.0;             // SIGTERM: finish in-flight runs within this, then cancel
  std::vector<uint32_t> allow_uids;        // empty: anyone who can open the socket
  std::vector<uint32_t> allow_gids;
  HttpConfig http;
};

// Parse TOML text (file is the name used in messages). Errors: SPECD_E_INVALID_ARG with "file:line: ...".
Result<Config> parse_config(const std::string& toml_text, const std::string& file);
// Check cfg.http before start-up: every address parses, api_key_file is read into api_key, and a
// TCP listener on a non-loopback address has a key. Errors: SPECD_E_INVALID_ARG or SPECD_E_IO naming
// the address or file.
Status finish_http_config(Config& cfg);
// Read and parse a file. Errors: SPECD_E_IO, or parse errors.
Result<Config> load_config(const std::string& path);
// Apply `specd serve` flags over cfg: --model NAME=PATH (repeatable; the first replaces the file's
// models), --socket, --runlog, --plugin-dir (repeatable; added to the file's list) and --side-file-dir
// (repeatable; replaces it), --threads, --log-level, --max-frame-bytes, --plugin-bytes, ...
// --http ADDR (repeatable; replaces [http] listen), --api-key-file PATH, ...
// argv[0] is "serve". Errors name the flag.
Status apply_flags(Config& cfg, int argc, char** argv);
// The options `specd serve` takes (each with a value), for checking its command line before the
// config file is read.
const std::set<std::string>& serve_options();

}  // namespace specd::daemon
