// Tests of packaging/: systemd-analyze verify on the units, their hardening settings, the sysusers
// entry, and specd.toml as TOML whose keys and defaults match daemon/config.h.
#include "clients/default_paths.h"
#include "daemon/config.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace specd::test;
namespace fs = std::filesystem;

namespace {

std::string packaging_src(const std::string& file) { return source_root() + "/packaging/" + file; }
bool have(const std::string& tool) { return run_command("command -v " + tool + " >/dev/null 2>&1", nullptr) == 0; }


void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// "Key=Value" lines of a unit file, comments and section headers left out.
std::vector<std::string> unit_entries(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    out.push_back(line);
  }
  return out;
}

bool has_entry(const std::vector<std::string>& entries, const std::string& want) {
  for (const auto& e : entries)
    if (e == want) return true;
  return false;
}

// The value of the last `key=` line ("" if none), as systemd's last-one-wins reading would see it.
std::string entry_value(const std::vector<std::string>& entries, const std::string& key) {
  std::string v;
  for (const auto& e : entries)
    if (e.rfind(key + "=", 0) == 0) v = e.substr(key.size() + 1);
  return v;
}

// The service template with ExecStart pointing at the built daemon, as systemd-analyze insists
// that the binary exists.
std::string service_for_build(const std::string& etc_dir) {
  std::string s = read_text(packaging_src("specd.service.in"));
  s = replace_all(s, "@SPECD_BINDIR@", build_root() + "/daemon");
  return replace_all(s, "@SPECD_SYSCONFDIR@", etc_dir);
}

// specd.toml flattened by Python's tomllib: "section.key<TAB>json value" per line.
const char* const kTomlDump = R"py(
import json, sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
for section, table in doc.items():
    for key, value in table.items():
        print(f"{section}.{key}\t{json.dumps(value)}")
)py";

}  // namespace

TEST_CASE("packaging: the service unit carries the hardening and lifecycle settings") {
  const auto e = unit_entries(read_text(packaging_src("specd.service.in")));
  for (const char* want :
       {"Type=notify", "NotifyAccess=main", "WatchdogSec=30", "User=specd", "Group=specd", "ProtectSystem=strict",
        "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX", "RestrictNamespaces=yes", "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes", "SystemCallArchitectures=native", "StateDirectory=specd",
        "RuntimeDirectory=specd", "RuntimeDirectoryPreserve=yes", "ConfigurationDirectory=specd",
        "CacheDirectory=specd", "KillSignal=SIGTERM", "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "Requires=specd.socket", "After=specd.socket"})
    CHECK_MESSAGE(has_entry(e, want), "specd.service lacks " << want);
  CHECK(entry_value(e, "ExecStart") == "@SPECD_BINDIR@/specd serve --config @SPECD_SYSCONFDIR@/specd/specd.toml");
  CHECK(entry_value(e, "DynamicUser").empty());  // a static user: see the unit's comment
  // The stop timeout must cover the drain grace (config.h's default) plus the run-log flush.
  CHECK(std::stod(entry_value(e, "TimeoutStopSec")) > specd::daemon::Config{}.drain_grace_s);
}

TEST_CASE("packaging: the socket unit listens where the daemon expects, for the specd group") {
  const auto e = unit_entries(read_text(packaging_src("specd.socket")));
  // What a systemd-run daemon and the clients take by default (clients/default_paths.h).
  specd::PathEnv service;
  service.runtime_directory = "/run/specd";
  service.listen_fds = true;
  CHECK(entry_value(e, "ListenStream") == specd::default_paths(service).socket);
  CHECK(entry_value(e, "ListenStream") == specd::client_socket_candidates(service).back());
  CHECK(entry_value(e, "SocketMode") == "0660");
  CHECK(entry_value(e, "SocketGroup") == "specd");
  CHECK(has_entry(e, "Accept=no"));
  CHECK(has_entry(e, "Service=specd.service"));
}

TEST_CASE("packaging: systemd-analyze verify accepts the units") {
  if (!have("systemd-analyze")) {
    MESSAGE("skipped: systemd-analyze not installed");
    return;
  }
  const std::string daemon = build_root() + "/daemon/specd";
  REQUIRE_MESSAGE(fs::exists(daemon), "the daemon is not built at " << daemon);
  const std::string dir = temp_dir();
  write_text(dir + "/specd.service", service_for_build(dir + "/etc"));
  fs::copy_file(packaging_src("specd.socket"), dir + "/specd.socket");
  std::string out;
  const int rc = run_command("systemd-analyze verify --man=no '" + dir + "/specd.socket' '" + dir +
                                 "/specd.service' 2>&1",
                             &out);
  INFO(out);
  CHECK(rc == 0);
  // verify exits 0 over unknown keys and unparsable values ("..., ignoring"), so any line about
  // our units counts as a failure.
  CHECK(out.find("specd.service") == std::string::npos);
  CHECK(out.find("specd.socket") == std::string::npos);
}

namespace {
// systemd-analyze's exposure score (0 best, 10 worst) of a service file, or -1 when it printed none.
double exposure(const std::string& service_file, std::string* out) {
  run_command("systemd-analyze security --offline=true '" + service_file + "' 2>&1", out);
  const std::string key = "Overall exposure level for specd.service: ";
  const size_t at = out->find(key);
  return at == std::string::npos ? -1.0 : std::stod(out->substr(at + key.size()));
}
}  // namespace

TEST_CASE("packaging: systemd-analyze security scores the unit, plain and with the CUDA drop-in, at most 2.0 (OK)") {
  if (!have("systemd-analyze")) {
    MESSAGE("skipped: systemd-analyze not installed");
    return;
  }
  const std::string dir = temp_dir();
  const std::string plain = service_for_build(dir + "/etc");
  write_text(dir + "/specd.service", plain);
  std::string out;
  const double score = exposure(dir + "/specd.service", &out);
  INFO(out);
  REQUIRE(score >= 0.0);
  CHECK(score <= 2.0);
  // The drop-in's [Service] lines come after the unit's and override them, as systemd merges them.
  std::string dropin = read_text(packaging_src("specd.service.d/cuda.conf"));
  dropin = dropin.substr(dropin.find("[Service]") + std::string("[Service]").size());
  const std::string cuda_dir = dir + "/cuda";
  fs::create_directories(cuda_dir);
  write_text(cuda_dir + "/specd.service", replace_all(plain, "[Install]", dropin + "\n[Install]"));
  std::string cuda_out;
  const double cuda_score = exposure(cuda_dir + "/specd.service", &cuda_out);
  INFO(cuda_out);
  REQUIRE(cuda_score >= 0.0);
  CHECK(cuda_score <= 2.0);
  CHECK(cuda_out.find("/dev/nvidiactl") != std::string::npos);  // the drop-in was really applied
  MESSAGE("exposure: " << score << " (plain), " << cuda_score << " (with the CUDA drop-in)");
}

TEST_CASE("packaging: the sysusers entry declares the specd user and group") {
  const std::string conf = packaging_src("sysusers.d/specd.conf");
  CHECK(read_text(conf).find("\nu specd ") != std::string::npos);
  if (!have("systemd-sysusers")) {
    MESSAGE("skipped: systemd-sysusers not installed");
    return;
  }
  std::string out;
  const std::string root = temp_dir();
  const int rc = run_command("systemd-sysusers --dry-run --root='" + root + "' '" + conf + "' 2>&1", &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("Creating user 'specd'") != std::string::npos);
}

TEST_CASE("packaging: specd.toml is TOML with config.h's keys and defaults") {
  if (run_command("/usr/bin/python3 -c 'import tomllib' >/dev/null 2>&1", nullptr) != 0) {
    MESSAGE("skipped: /usr/bin/python3 with tomllib (3.11+) not available");
    return;
  }
  // The configured file meson writes into the build tree is what gets installed.
  const std::string toml = build_root() + "/packaging/specd.toml";
  CHECK(read_text(toml).find('@') == std::string::npos);
  const std::string script = temp_dir() + "/dump_toml.py";
  write_text(script, kTomlDump);
  std::string out;
  REQUIRE(run_command("/usr/bin/python3 '" + script + "' '" + toml + "' 2>&1", &out) == 0);
  std::map<std::string, std::string> kv;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    REQUIRE_MESSAGE(tab != std::string::npos, line);
    kv[line.substr(0, tab)] = line.substr(tab + 1);
  }
  const specd::daemon::Config d;
  const specd::daemon::Limits& l = d.limits;
  const std::map<std::string, std::string> want = {
      {"daemon.socket", std::string("\"") + specd::kSystemSocket + "\""},  // the service's default place
      {"daemon.log_level", "\"info\""},
      {"daemon.socket_mode", "\"0660\""},
      {"daemon.threads", std::to_string(d.threads)},
      {"daemon.default_model", "\"stories260K\""},
      {"daemon.drain_grace_s", "30.0"},
      {"daemon.side_file_dirs", d.side_file_dirs.empty() ? "[]" : "?"},
      {"daemon.device", "\"" + d.device + "\""},
      {"daemon.device_memory_bytes", std::to_string(d.device_memory)},
      {"runlog.path", std::string("\"") + specd::kSystemRunlog + "\""},
      {"runlog.max_rows", std::to_string(d.runlog_max_rows)},
      {"runlog.max_age_days", std::to_string(d.runlog_max_age_days)},
      {"runlog.synchronous", d.runlog_sync_full ? "\"full\"" : "\"normal\""},
      {"limits.max_frame_bytes", std::to_string(l.max_frame_bytes)},
      {"limits.max_connections", std::to_string(l.max_connections)},
      {"limits.max_concurrent", std::to_string(l.max_concurrent)},
      {"limits.max_queued", std::to_string(l.max_queued)},
      {"limits.max_tokens", std::to_string(l.max_tokens)},
      {"limits.max_requests_per_connection", std::to_string(l.max_requests_per_connection)},
      {"limits.max_connections_per_uid", std::to_string(l.max_connections_per_uid)},
      {"limits.max_requests_per_uid", std::to_string(l.max_requests_per_uid)},
      {"limits.handshake_timeout_ms", std::to_string(l.handshake_timeout_ms)},
      {"limits.idle_timeout_ms", std::to_string(l.idle_timeout_ms)},
      {"limits.kv_bytes", std::to_string(l.kv_bytes)},
      {"limits.max_side_file_bytes", std::to_string(l.max_side_file_bytes)},
      {"limits.plugin_bytes", std::to_string(l.plugin_bytes)},
      {"http.listen", "[]"},
      {"http.max_body_bytes", std::to_string(d.http.max_body_bytes)},
      {"http.request_timeout_ms", std::to_string(d.http.request_timeout_ms)},
      {"http.max_connections", std::to_string(d.http.max_connections)},
      {"access.allow_uids", "[]"},
      {"access.allow_gids", "[]"},
  };
  CHECK(d.socket_mode == 0660);
  CHECK(d.log_level == specd::daemon::LogLevel::Info);
  CHECK(d.drain_grace_s == 30.0);
  for (const auto& [key, value] : want) CHECK_MESSAGE(kv[key] == value, key);
  CHECK(kv.count("models.stories260K") == 1);
  CHECK(kv.count("plugins.dirs") == 1);
  for (const auto& [key, value] : kv) {
    const bool known = want.count(key) || key == "models.stories260K" || key == "plugins.dirs";
    CHECK_MESSAGE(known, "unexpected key " << key);
  }
}
