// The daemon's config: a full file, file:line errors for unknown keys and bad types, flags over the file.
#include "daemon/config.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace specd;
using specd::daemon::Config;

namespace {

const char* const kGood = R"(# a full config
[daemon]
socket = "/run/specd/test.sock"
socket_mode = "0600"
threads = 4
default_model = "tiny"
drain_grace_s = 2.5
device = "cuda:1"

[models]
stories = "/models/stories260K.gguf"
tiny = { path = "/models/tiny.gguf", device = "cpu" }

[plugins]
dirs = ["/usr/lib/specd/decoders", "/opt/decoders"]

[runlog]
path = "/var/lib/specd/test.db"
max_rows = 500
max_age_days = 7
synchronous = "full"

[limits]
max_frame_bytes = 65536
max_connections = 10
max_concurrent = 4
max_queued = 8
max_tokens = 1000
max_requests_per_connection = 3
max_connections_per_uid = 4
max_requests_per_uid = 6
handshake_timeout_ms = 250
idle_timeout_ms = 0
kv_bytes = 268435456

[access]
allow_uids = [0, 1000]
allow_gids = [27]
)";

Config parse_ok(const std::string& text) {
  auto r = daemon::parse_config(text, "specd.toml");
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  return r.value();
}

std::string parse_error(const std::string& text) {
  auto r = daemon::parse_config(text, "specd.toml");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_INVALID_ARG);
  return r.error().message;
}

Status flags(Config& c, std::vector<std::string> args) {
  args.insert(args.begin(), "serve");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return daemon::apply_flags(c, static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("config: every section and key of a good file") {
  const Config c = parse_ok(kGood);
  CHECK(c.source == "specd.toml");
  CHECK(c.socket_path == "/run/specd/test.sock");
  CHECK(c.socket_mode == 0600);
  CHECK(c.threads == 4);
  CHECK(c.default_model == "tiny");
  CHECK(c.drain_grace_s == 2.5);
  CHECK(c.models.size() == 2);
  CHECK(c.models.at("stories") == "/models/stories260K.gguf");
  CHECK(c.models.at("tiny") == "/models/tiny.gguf");
  CHECK(c.model_devices.at("tiny") == "cpu");
  CHECK(c.device == "cuda:1");
  CHECK(c.plugin_dirs == std::vector<std::string>{"/usr/lib/specd/decoders", "/opt/decoders"});
  CHECK(c.runlog_path == "/var/lib/specd/test.db");
  CHECK(c.runlog_max_rows == 500);
  CHECK(c.runlog_max_age_days == 7);
  CHECK(c.runlog_sync_full);
  CHECK(c.limits.max_frame_bytes == 65536);
  CHECK(c.limits.max_connections == 10);
  CHECK(c.limits.max_concurrent == 4);
  CHECK(c.limits.max_queued == 8);
  CHECK(c.limits.max_tokens == 1000);
  CHECK(c.limits.kv_bytes == 268435456u);
  CHECK(c.limits.max_requests_per_connection == 3);
  CHECK(c.limits.max_connections_per_uid == 4);
  CHECK(c.limits.max_requests_per_uid == 6);
  CHECK(c.limits.handshake_timeout_ms == 250);
  CHECK(c.limits.idle_timeout_ms == 0);
  CHECK(c.allow_uids == std::vector<uint32_t>{0, 1000});
  CHECK(c.allow_gids == std::vector<uint32_t>{27});
}

TEST_CASE("config: an empty file gives the defaults; the default model is the first in file order") {
  const Config d = parse_ok("");
  const Config def;
  CHECK(d.socket_path == def.socket_path);
  CHECK(d.limits.max_frame_bytes == def.limits.max_frame_bytes);
  CHECK(d.models.empty());
  // "zeta" sorts last but comes first in the file.
  const Config c = parse_ok("[models]\nzeta = \"/z.gguf\"\nalpha = \"/a.gguf\"\n");
  CHECK(c.default_model == "zeta");
  CHECK(parse_ok("[daemon]\nsocket_mode = 0o640\n").socket_mode == 0640);
  CHECK(parse_ok("[daemon]\ndrain_grace_s = 3\n").drain_grace_s == 3.0);
}

TEST_CASE("config: unknown keys and sections are errors with file and line") {
  CHECK(parse_error("[limits]\nmax_tokens = 5\nmax_frame = 1\n") == "specd.toml:3: unknown key 'limits.max_frame'");
  CHECK(parse_error("\n\n[deamon]\nsocket = \"/x\"\n") == "specd.toml:3: unknown key 'deamon'");
  CHECK(parse_error("threads = 4\n") == "specd.toml:1: unknown key 'threads'");
  CHECK(parse_error("[access]\nallow_users = [1]\n") == "specd.toml:2: unknown key 'access.allow_users'");
}

TEST_CASE("config: bad types and ranges name the key and line") {
  CHECK(parse_error("[daemon]\nthreads = \"four\"\n").find("specd.toml:2: 'daemon.threads' must be an integer") == 0);
  CHECK(parse_error("[limits]\n\nmax_concurrent = 0\n").find("specd.toml:3: 'limits.max_concurrent' must be an integer in [1,") == 0);
  CHECK(parse_error("[limits]\nmax_frame_bytes = 10\n").find("specd.toml:2:") == 0);
  CHECK(parse_error("[daemon]\nsocket_mode = \"rw\"\n").find("'daemon.socket_mode' must be an octal mode") != std::string::npos);
  CHECK(parse_error("[daemon]\ndrain_grace_s = -1.0\n").find("'daemon.drain_grace_s' must be a number") != std::string::npos);
  CHECK(parse_error("[runlog]\nsynchronous = \"off\"\n").find("specd.toml:2: 'runlog.synchronous' must be \"normal\" or \"full\"") == 0);
  CHECK(parse_error("[plugins]\ndirs = \"/x\"\n").find("'plugins.dirs' must be an array of strings") != std::string::npos);
  CHECK(parse_error("[plugins]\ndirs = [\"/x\",\n 3]\n").find("specd.toml:3:") == 0);
  CHECK(parse_error("[access]\nallow_uids = [-1]\n").find("'access.allow_uids' must hold ids") != std::string::npos);
  CHECK(parse_error("[models]\nx = 5\n").find("specd.toml:2: 'models.x' must be a non-empty string") == 0);
  CHECK(parse_error("daemon = 5\n").find("'daemon' must be a table") != std::string::npos);
  CHECK(parse_error("[daemon]\ndefault_model = \"nope\"\n[models]\na = \"/a\"\n").find("default_model 'nope'") != std::string::npos);
}

TEST_CASE("config: TOML syntax errors carry the line") {
  CHECK(parse_error("[daemon]\nsocket = \n").find("specd.toml:2:") == 0);
  CHECK(parse_error("[limits\n").find("specd.toml:1:") == 0);
  CHECK(parse_error("[daemon]\nthreads = 1\nthreads = 2\n").find("specd.toml:3:") == 0);  // redefinition
}

TEST_CASE("config: load_config reads a file and reports a missing one as IO") {
  const std::string dir = test::temp_dir();
  const std::string text = "[models]\nm = \"/m.gguf\"\n";
  test::write_file(dir + "/specd.toml", std::vector<uint8_t>(text.begin(), text.end()));
  auto c = daemon::load_config(dir + "/specd.toml");
  REQUIRE(c.has_value());
  CHECK(c->models.at("m") == "/m.gguf");
  CHECK(c->source == dir + "/specd.toml");
  auto missing = daemon::load_config(dir + "/none.toml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == SPECD_E_IO);
}

TEST_CASE("config: flags override the file") {
  Config c = parse_ok(kGood);
  REQUIRE(flags(c, {"--config", "ignored-here", "--model", "a=/a.gguf", "--model", "/m/b.gguf", "--socket", "/tmp/s.sock",
                    "--runlog=/tmp/r.db", "--plugin-dir", "/p1", "--plugin-dir", "/p2", "--threads", "2",
                    "--max-frame-bytes", "4096", "--max-concurrent", "3", "--max-queued", "0", "--max-tokens", "77",
                    "--kv-bytes", "1048576", "--max-connections", "5", "--socket-mode", "0666", "--drain-grace-s", "0",
                    "--max-requests-per-connection", "7", "--handshake-timeout-ms", "90", "--idle-timeout-ms", "1500",
                    "--max-connections-per-uid", "2", "--max-requests-per-uid", "9"})
              .has_value());
  CHECK(c.models.size() == 2);  // the flags' models replace the file's
  CHECK(c.models.at("a") == "/a.gguf");
  CHECK(c.models.at("b") == "/m/b.gguf");  // a bare path is named by its stem
  CHECK(c.default_model == "a");           // the file's "tiny" is gone: the first flag model
  CHECK(c.socket_path == "/tmp/s.sock");
  CHECK(c.runlog_path == "/tmp/r.db");
  // --plugin-dir adds, before the file's list (and serve adds the built-in directory after both).
  CHECK(c.plugin_dirs == std::vector<std::string>{"/p1", "/p2", "/usr/lib/specd/decoders", "/opt/decoders"});
  CHECK(c.threads == 2);
  CHECK(c.limits.max_frame_bytes == 4096);
  CHECK(c.limits.max_concurrent == 3);
  CHECK(c.limits.max_queued == 0);
  CHECK(c.limits.max_tokens == 77);
  CHECK(c.limits.kv_bytes == 1048576u);
  CHECK(c.limits.max_connections == 5);
  CHECK(c.socket_mode == 0666);
  CHECK(c.drain_grace_s == 0.0);
  CHECK(c.limits.max_requests_per_connection == 7);
  CHECK(c.limits.max_connections_per_uid == 2);
  CHECK(c.limits.max_requests_per_uid == 9);
  CHECK(c.limits.handshake_timeout_ms == 90);
  CHECK(c.limits.idle_timeout_ms == 1500);
  CHECK(c.runlog_max_rows == 500);  // untouched by flags

  Config keep = parse_ok(kGood);
  REQUIRE(flags(keep, {"--threads", "1"}).has_value());
  CHECK(keep.models.size() == 2);
  CHECK(keep.default_model == "tiny");
  REQUIRE(flags(keep, {"--default-model", "stories"}).has_value());
  CHECK(keep.default_model == "stories");
}

TEST_CASE("config: bad flags name the flag") {
  Config c;
  auto st = flags(c, {"--threads", "many"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--threads") != std::string::npos);
  st = flags(c, {"--bogus", "1"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--bogus") != std::string::npos);
  st = flags(c, {"--model", "=x"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--model") != std::string::npos);
  st = flags(c, {"--model", "a=/x", "--model", "a=/y"});
  REQUIRE_FALSE(st.has_value());
  st = flags(c, {"--socket-mode", "999"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--socket-mode") != std::string::npos);
  st = flags(c, {"--default-model", "nope"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--default-model") != std::string::npos);
}

TEST_CASE("config: the packaged default specd.toml parses with every key known") {
  auto bytes = test::read_file(test::source_root() + "/packaging/specd.toml.in");
  if (bytes.empty()) {
    MESSAGE("packaging/specd.toml.in not found; nothing to check");
    return;
  }
  std::string text(bytes.begin(), bytes.end());
  // Stand-ins for the install paths meson fills in.
  for (size_t at; (at = text.find('@')) != std::string::npos;) {
    const size_t end = text.find('@', at + 1);
    REQUIRE(end != std::string::npos);
    text.replace(at, end - at + 1, "/usr");
  }
  const Config c = parse_ok(text);
  CHECK(!c.models.empty());
  CHECK(c.models.count(c.default_model) == 1);
}

TEST_CASE("config: side_file_dirs and max_side_file_bytes, from the file and from flags") {
  Config d = parse_ok("");
  CHECK(d.side_file_dirs.empty());  // empty: each model's folder and the training cache
  CHECK(d.limits.max_side_file_bytes == uint64_t{256} << 20);
  Config c = parse_ok("[daemon]\nside_file_dirs = [\"/srv/drafters\", \"/srv/more\"]\n[limits]\nmax_side_file_bytes = 4096\n");
  CHECK(c.side_file_dirs == std::vector<std::string>{"/srv/drafters", "/srv/more"});
  CHECK(c.limits.max_side_file_bytes == 4096);
  auto bad = daemon::parse_config("[daemon]\nside_file_dirs = \"/srv\"\n", "t.toml");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("t.toml:2") != std::string::npos);
  CHECK(bad.error().message.find("daemon.side_file_dirs") != std::string::npos);
  bad = daemon::parse_config("[limits]\nmax_side_file_bytes = 0\n", "t.toml");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("limits.max_side_file_bytes") != std::string::npos);

  REQUIRE(flags(c, {"--side-file-dir", "/a", "--side-file-dir", "/b", "--max-side-file-bytes", "65536"}).has_value());
  CHECK(c.side_file_dirs == std::vector<std::string>{"/a", "/b"});  // the flags replace the file's list
  CHECK(c.limits.max_side_file_bytes == 65536);
  auto st = flags(c, {"--max-side-file-bytes", "12"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("max-side-file-bytes") != std::string::npos);
}

TEST_CASE("config: limits.plugin_bytes, from the file and from --plugin-bytes") {
  CHECK(parse_ok("").limits.plugin_bytes == uint64_t{4} << 30);
  Config c = parse_ok("[limits]\nplugin_bytes = 16777216\n");
  CHECK(c.limits.plugin_bytes == uint64_t{16} << 20);
  for (const char* text : {"[limits]\nplugin_bytes = 4096\n", "[limits]\nplugin_bytes = \"4G\"\n",
                           "[limits]\nplugin_bytes = -1\n"}) {
    auto bad = daemon::parse_config(text, "t.toml");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == SPECD_E_INVALID_ARG);
    CHECK_MESSAGE(bad.error().message.find("t.toml:2: 'limits.plugin_bytes' must be an integer in [1048576, ") !=
                      std::string::npos,
                  bad.error().message);
  }
  REQUIRE(flags(c, {"--plugin-bytes", "2097152"}).has_value());
  CHECK(c.limits.plugin_bytes == uint64_t{2} << 20);
  auto st = flags(c, {"--plugin-bytes", "100"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("plugin-bytes") != std::string::npos);
}

TEST_CASE("config: device, per model and for all, from the file and from --device") {
  Config c = parse_ok(R"([daemon]
device = "cuda:1"
device_memory_bytes = 4096

[models]
a = "/m/a.gguf"
b = { path = "/m/b.gguf", device = "cpu", device_memory_bytes = 1024 }
)");
  CHECK(c.device_memory == 4096u);
  CHECK(c.model_device_memory.at("b") == 1024u);
  CHECK(c.model_device_memory.count("a") == 0);
  CHECK(c.device == "cuda:1");
  CHECK(c.models.at("a") == "/m/a.gguf");
  CHECK(c.models.at("b") == "/m/b.gguf");
  CHECK(c.model_devices.size() == 1);
  CHECK(c.model_devices.at("b") == "cpu");
  CHECK(c.default_model == "a");
  CHECK(parse_ok("").device == "auto");
  REQUIRE(flags(c, {"--device", "cuda"}).has_value());
  CHECK(c.device == "cuda");

  // A device name that is not one, in each place, names the place.
  std::string e = parse_error("[daemon]\ndevice = \"gpu\"\n");
  CHECK(e.find("specd.toml:2") != std::string::npos);
  CHECK(e.find("unknown device 'gpu'") != std::string::npos);
  e = parse_error("[models]\nm = { path = \"/m.gguf\", device = \"cuda:-1\" }\n");
  CHECK(e.find("unknown device 'cuda:-1'") != std::string::npos);
  e = parse_error("[models]\nm = { device = \"cpu\" }\n");
  CHECK(e.find("model 'm' has no path") != std::string::npos);
  e = parse_error("[models]\nm = { path = \"/m.gguf\", gpu = 1 }\n");
  CHECK(e.find("unknown key 'models.m.gpu'") != std::string::npos);
  auto st = flags(c, {"--device", "tpu"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--device") != std::string::npos);
}

TEST_CASE("config: [http] listen, key and limits; the start-up checks") {
  auto c = daemon::parse_config(
      "[http]\nlisten = \"127.0.0.1:8080\"\nmax_body_bytes = 4096\nrequest_timeout_ms = 500\napi_key = \"k\"\nmax_connections = 7\n", "h.toml");
  REQUIRE(c);
  CHECK(c->http.listen == std::vector<std::string>{"127.0.0.1:8080"});
  CHECK(c->http.max_body_bytes == 4096);
  CHECK(c->http.request_timeout_ms == 500);
  CHECK(c->http.max_connections == 7);
  CHECK(c->http.api_key == "k");
  c = daemon::parse_config("[http]\nlisten = [\"127.0.0.1:1\", \"unix:/run/x.sock\"]\n", "h.toml");
  REQUIRE(c);
  CHECK(c->http.listen.size() == 2);
  CHECK(daemon::finish_http_config(*c));
  for (const char* bad : {"[http]\nlisten = 3\n", "[http]\nport = 80\n", "[http]\nmax_body_bytes = 10\n", "[http]\napi_key = \"\"\n",
                          "[http]\nmax_connections = 0\n"}) {
    CAPTURE(bad);
    auto r = daemon::parse_config(bad, "h.toml");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.rfind("h.toml:", 0) == 0);
  }
  Config open;
  open.http.listen = {"0.0.0.0:8080"};
  auto st = daemon::finish_http_config(open);
  REQUIRE_FALSE(st);
  CHECK(st.error().message.find("without an API key") != std::string::npos);
  open.http.listen = {"example.org:80"};
  CHECK_FALSE(daemon::finish_http_config(open));
  const std::string key = test::temp_dir() + "/key";
  test::write_file(key, {'a', 'b', '\r', '\n', 'x'});
  open.http.listen = {"0.0.0.0:8080"};
  open.http.api_key_file = key;
  REQUIRE(daemon::finish_http_config(open));
  CHECK(open.http.api_key == "ab");
  open.http.api_key_file = key + ".missing";
  st = daemon::finish_http_config(open);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == SPECD_E_IO);
  char* argv[] = {const_cast<char*>("serve"), const_cast<char*>("--http"), const_cast<char*>("unix:/tmp/a.sock"),
                  const_cast<char*>("--http"), const_cast<char*>("[::1]:9"), const_cast<char*>("--api-key-file"), const_cast<char*>("/k")};
  Config f;
  REQUIRE(daemon::apply_flags(f, 7, argv));
  CHECK(f.http.listen == std::vector<std::string>{"unix:/tmp/a.sock", "[::1]:9"});
  CHECK(f.http.api_key_file == "/k");
}

TEST_CASE("config: log_level from the file and --log-level; bad levels name the choices") {
  CHECK(Config{}.log_level == daemon::LogLevel::Info);
  CHECK(parse_ok("[daemon]\nlog_level = \"debug\"\n").log_level == daemon::LogLevel::Debug);
  CHECK(parse_ok("[daemon]\nlog_level = \"warning\"\n").log_level == daemon::LogLevel::Warn);
  auto bad = daemon::parse_config("[daemon]\nlog_level = \"loud\"\n", "t.toml");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "t.toml:2: 'daemon.log_level': log level 'loud' is not one of error, warn, info, debug");
  Config c;
  REQUIRE(flags(c, {"--log-level", "error"}).has_value());
  CHECK(c.log_level == daemon::LogLevel::Error);
  auto st = flags(c, {"--log-level", "verbose"});
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message.find("--log-level: log level 'verbose'") == 0);
}
