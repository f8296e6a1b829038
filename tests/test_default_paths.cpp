// Where the daemon and its clients put and look for the socket and run log when nothing says
// (clients/default_paths.h), the directories `specd serve` makes for them, its --help and
// --print-config.
#include "clients/default_paths.h"
#include "daemon/config.h"
#include "daemon/serve_paths.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using namespace specd;
using namespace specd::test;

namespace {

PathEnv user_env() {
  PathEnv e;
  e.xdg_runtime_dir = "/run/user/1000";
  e.home = "/users/ann";
  return e;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("default paths: a normal user gets $XDG_RUNTIME_DIR and $XDG_STATE_HOME (or ~/.local/state)") {
  PathEnv e = user_env();
  DefaultPaths p = default_paths(e);
  CHECK_FALSE(p.system);
  CHECK(p.reason == "user");
  CHECK(p.socket == "/run/user/1000/specd/specd.sock");
  CHECK(p.runlog == "/users/ann/.local/state/specd/runs.db");
  e.xdg_state_home = "/data/state";
  CHECK(default_paths(e).runlog == "/data/state/specd/runs.db");
  e.xdg_state_home = "relative/state";  // not absolute: ignored, as the XDG spec says
  CHECK(default_paths(e).runlog == "/users/ann/.local/state/specd/runs.db");
  // No runtime dir (a login without pam_systemd): the private state dir holds the socket too.
  e.xdg_runtime_dir.clear();
  CHECK(default_paths(e).socket == "/users/ann/.local/state/specd/specd.sock");
}

TEST_CASE("default paths: root, systemd's directories and socket activation use the system places") {
  PathEnv e = user_env();
  e.root = true;
  DefaultPaths p = default_paths(e);
  CHECK(p.system);
  CHECK(p.reason == "root");
  CHECK(p.socket == "/run/specd/specd.sock");
  CHECK(p.runlog == "/var/lib/specd/runs.db");
  e = user_env();
  e.runtime_directory = "/run/specd";
  e.state_directory = "/var/lib/specd";
  p = default_paths(e);
  CHECK(p.reason == "systemd");
  CHECK(p.socket == "/run/specd/specd.sock");
  CHECK(p.runlog == "/var/lib/specd/runs.db");
  e.runtime_directory = "/run/user/1000/specd";  // a user unit with RuntimeDirectory=specd
  e.state_directory = "/users/ann/.local/state/specd";
  CHECK(default_paths(e).socket == "/run/user/1000/specd/specd.sock");
  CHECK(default_paths(e).runlog == "/users/ann/.local/state/specd/runs.db");
  e = user_env();
  e.listen_fds = true;
  CHECK(default_paths(e).system);
  PathEnv bare;  // no HOME, no XDG: nowhere private to go
  CHECK(default_paths(bare).system);
}

TEST_CASE("default paths: a client looks for its user's daemon first, then the system one") {
  PathEnv e = user_env();
  CHECK(client_socket_candidates(e) == std::vector<std::string>{"/run/user/1000/specd/specd.sock", "/run/specd/specd.sock"});
  e.root = true;
  CHECK(client_socket_candidates(e) == std::vector<std::string>{"/run/specd/specd.sock"});
  // The first that exists wins; none: the system socket (the error then names every candidate).
  const std::string dir = temp_dir();
  e = PathEnv{};
  e.xdg_runtime_dir = dir;
  if (!std::filesystem::exists("/run/specd/specd.sock")) CHECK(client_default_socket(e) == "/run/specd/specd.sock");
  std::filesystem::create_directories(dir + "/specd");
  const std::string own = dir + "/specd/specd.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", own.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  CHECK(client_default_socket(e) == own);
  ::close(fd);
}

TEST_CASE("serve paths: unset paths take the defaults; missing directories are made private") {
  daemon::Config c;
  DefaultPaths d;
  d.socket = "/a/s.sock";
  d.runlog = "/b/r.db";
  daemon::apply_default_paths(c, d);
  CHECK(c.socket_path == "/a/s.sock");
  CHECK(c.runlog_path == "/b/r.db");
  c.socket_path = "/given.sock";
  daemon::apply_default_paths(c, DefaultPaths{"/x", "/y", false, ""});
  CHECK(c.socket_path == "/given.sock");
  CHECK(daemon::socket_dir_mode(DefaultPaths{"", "", true, ""}) == 0755);
  CHECK(daemon::socket_dir_mode(DefaultPaths{"", "", false, ""}) == 0700);

  const std::string dir = temp_dir();
  const mode_t old = ::umask(022);
  REQUIRE(daemon::make_parent_dirs(dir + "/state/specd/runs.db", 0700).has_value());
  CHECK(mode_of(dir + "/state") == 0700);
  CHECK(mode_of(dir + "/state/specd") == 0700);
  REQUIRE(daemon::make_parent_dirs(dir + "/state/specd/runs.db", 0700).has_value());  // again: nothing to do
  REQUIRE(daemon::make_parent_dirs("runs.db", 0700).has_value());                    // the current directory
  // A file where a directory should be is an error naming it.
  REQUIRE(run_command("touch '" + dir + "/file'", nullptr) == 0);
  auto st = daemon::make_parent_dirs(dir + "/file/runs.db", 0700);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code == SPECD_E_IO);
  CHECK(st.error().message.find(dir + "/file") != std::string::npos);
  ::umask(old);
}

TEST_CASE("specd serve: --help prints every default; --print-config is a config the daemon accepts") {
  std::string out;
  REQUIRE(run_command(build_root() + "/daemon/specd serve --help", &out) == 0);
  for (const char* want : {"(default /run/specd/specd.sock;", "(default /var/lib/specd/runs.db)", "(default 0660)",
                           "(default info)", "split evenly between the models (default 1073741824)", "(default 4096)",
                           "(default 300000)", "built-in: ", "--print-config"})
    CHECK_MESSAGE(out.find(want) != std::string::npos, want);
  // Under a systemd unit's directories the defaults follow them.
  const std::string dir = temp_dir();
  out.clear();
  REQUIRE(run_command("RUNTIME_DIRECTORY=" + dir + "/run STATE_DIRECTORY=" + dir + "/state " + build_root() +
                          "/daemon/specd serve --print-config --model m=/models/m.gguf",
                      &out) == 0);
  CHECK(out.find('@') == std::string::npos);  // nothing left to fill in by hand
  auto cfg = daemon::parse_config(out, "printed.toml");
  REQUIRE_MESSAGE(cfg.has_value(), cfg.error().message);
  CHECK(cfg->socket_path == dir + "/run/specd.sock");
  CHECK(cfg->runlog_path == dir + "/state/runs.db");
  CHECK(cfg->models == std::map<std::string, std::string>{{"m", "/models/m.gguf"}});
  CHECK(cfg->default_model == "m");
  CHECK(cfg->log_level == daemon::LogLevel::Info);
  const daemon::Config def;
  CHECK(cfg->limits.kv_bytes == def.limits.kv_bytes);
  CHECK(cfg->limits.max_tokens == def.limits.max_tokens);
  CHECK(cfg->drain_grace_s == def.drain_grace_s);
}

TEST_CASE("specd serve: a run-log directory that cannot be made, or a bad flag with --print-config, fails by name") {
  const std::string dir = temp_dir();
  REQUIRE(run_command("touch '" + dir + "/file'", nullptr) == 0);
  std::string out;
  CHECK(run_command(build_root() + "/daemon/specd serve --model s=" + model_path("stories260K.gguf") + " --socket " + dir +
                        "/s.sock --runlog " + dir + "/file/runs.db 2>&1",
                    &out) == 1);
  CHECK_MESSAGE(out.find(dir + "/file is not a directory") != std::string::npos, out);
  out.clear();
  CHECK(run_command(build_root() + "/daemon/specd serve --print-config --threads many 2>&1", &out) == 2);
  CHECK_MESSAGE(out.find("--threads") != std::string::npos, out);
}

TEST_CASE("specctl with no daemon anywhere names every place it looked") {
  if (std::filesystem::exists(kSystemSocket)) return;  // a system daemon answers here: nothing to check
  const std::string dir = temp_dir();
  std::filesystem::permissions(dir, std::filesystem::perms::all);
  // As root, become nobody, running a copy nobody can reach; as anyone else, stay.
  const std::string tree = tree_for_other_user();
  const std::string programs = tree.empty() ? build_root() : tree;
  const std::string as_user = tree.empty() ? "" : "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  std::string out;
  CHECK_MESSAGE(run_command("env -i PATH=/usr/bin:/bin HOME=" + dir + " XDG_RUNTIME_DIR=" + dir + " " + as_user +
                                "env LD_LIBRARY_PATH=" + programs + "/clients " + programs + "/clients/specctl status 2>&1",
                            &out) == 3,
                out);
  CHECK_MESSAGE(out.find("no socket at " + dir + "/specd/specd.sock, /run/specd/specd.sock; set $SPECD_SOCKET") !=
                    std::string::npos, out);
}
