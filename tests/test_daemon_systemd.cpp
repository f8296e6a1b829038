// The daemon under systemd's eyes: what it says on $NOTIFY_SOCKET (sd_notify(3)) while it starts,
// serves, reloads on SIGHUP and stops. The test binds the datagram socket itself, so no systemd is
// needed; the messages are read in the order they were sent.
#include "tests/daemon_harness.h"
#include "tests/test_support.h"

#include <filesystem>
#include <memory>
#include <poll.h>
#include <time.h>

using namespace specd;
using namespace specd::test;

namespace {

// A $NOTIFY_SOCKET the daemons it starts inherit (with $WATCHDOG_USEC when asked).
class NotifyListener {
 public:
  NotifyListener() : path_(temp_dir() + "/notify.sock") {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~NotifyListener() { ::close(fd_); }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  std::unique_ptr<DaemonProcess> start(std::vector<std::string> extra = {}, const char* watchdog_usec = nullptr) {
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);  // the child inherits these; this process never reads them
    if (watchdog_usec) ::setenv("WATCHDOG_USEC", watchdog_usec, 1);
    auto d = std::make_unique<DaemonProcess>(std::move(extra));
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    return d;
  }
  // The next message, or "" when none came within timeout_ms.
  std::string next(int timeout_ms = 20000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[512];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Reads until a message equal to want ("STATUS=" matches any status line); false on a timeout.
  bool until(const std::string& want) {
    for (std::string m = next(); !m.empty(); m = next())
      if (m == want || (want == "STATUS=" && m.rfind("STATUS=", 0) == 0)) return true;
    return false;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

uint64_t monotonic_usec() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000u + static_cast<uint64_t>(t.tv_nsec) / 1000u;
}

GenOutcome run(RawClient& c, uint64_t rid, const std::string& decoder) {
  GenParams p;
  p.max_tokens = 12;
  p.decoder = decoder;
  REQUIRE(c.send(generate_frame(rid, p)));
  return collect(c, rid);
}

}  // namespace

TEST_CASE("serve: systemd notifications — READY, STATUS, WATCHDOG pings, STOPPING") {
  NotifyListener n;
  auto d = n.start({}, "100000");
  REQUIRE_MESSAGE(d->wait_ready(), d->log());
  CHECK(n.until("READY=1"));
  CHECK(n.until("STATUS="));
  CHECK(n.until("WATCHDOG=1"));  // every 50 ms, half of WATCHDOG_USEC
  d->signal(SIGTERM);
  CHECK(n.until("STOPPING=1"));
  CHECK(d->wait_exit() == 0);
}

TEST_CASE("serve: SIGHUP tells systemd RELOADING=1 (with MONOTONIC_USEC), rescans, then READY=1, and serves on") {
  namespace fs = std::filesystem;
  const std::string plugins = temp_dir();
  fs::copy_file(build_root() + "/plugins/ar.so", plugins + "/ar.so");
  ::setenv("SPECD_PLUGIN_DIR", (plugins + "/none").c_str(), 1);  // only the copy: no built-in ngram
  NotifyListener n;
  auto d = n.start({"--plugin-dir", plugins});
  ::unsetenv("SPECD_PLUGIN_DIR");
  REQUIRE_MESSAGE(d->wait_ready(), d->log());
  REQUIRE(n.until("READY=1"));  // the start's
  RawClient c(d->socket());
  CHECK(run(c, 1, "ngram").error_code == SPECD_E_UNKNOWN_DECODER);
  fs::copy_file(build_root() + "/plugins/ngram.so", plugins + "/ngram.so");

  for (uint64_t round = 0; round < 2; ++round) {  // the second reload finds nothing new
    CAPTURE(round);
    const uint64_t before = monotonic_usec();
    d->signal(SIGHUP);
    std::vector<std::string> seen;  // the messages up to the reload's READY=1, in order (STATUS lines left out)
    for (std::string m = n.next(); !m.empty(); m = n.next()) {
      if (m.rfind("STATUS=", 0) == 0) continue;
      seen.push_back(m);
      if (m == "READY=1") break;
    }
    const uint64_t after = monotonic_usec();
    REQUIRE_MESSAGE(seen.size() == 2, d->log());
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    REQUIRE_MESSAGE(seen[0].rfind(prefix, 0) == 0, seen[0]);
    const uint64_t usec = std::stoull(seen[0].substr(prefix.size()));
    CHECK(usec >= before);  // CLOCK_MONOTONIC is one clock for every process
    CHECK(usec <= after);
    CHECK(seen[1] == "READY=1");
    // READY=1 came after the rescan: the new decoder runs on the first try, and so does the old one.
    const GenOutcome added = run(c, 10 + round * 2, "ngram");
    CHECK_MESSAGE(added.finished, added.error_name << ": " << added.error_message << "\n" << d->log());
    CHECK(added.generated_tokens == 12);
    CHECK(run(c, 11 + round * 2, "ar").finished);
  }
  CHECK(d->log().find("plugin rescan done") != std::string::npos);
}

TEST_CASE("serve: SIGHUP while draining is ignored: no RELOADING=1 after STOPPING=1") {
  NotifyListener n;
  auto d = n.start({"--plugin-dir", build_root() + "/plugins", "--plugin-dir", build_root() + "/tests/plugins"});
  REQUIRE_MESSAGE(d->wait_ready(), d->log());
  REQUIRE(n.until("READY=1"));
  RawClient c(d->socket());
  GenParams p;
  p.max_tokens = 30;
  p.decoder = "misbehave";
  p.options = R"({"mode": "slow"})";  // 80 ms a step: the drain lasts while the SIGHUP comes
  REQUIRE(c.send(generate_frame(1, p)));
  REQUIRE(env_of(c.recv_for(1))->body_type() == wire::Body::TokenEvent);
  d->signal(SIGTERM);
  REQUIRE(n.until("STOPPING=1"));
  d->signal(SIGHUP);
  // Read what it says until it has exited (a listener that stopped reading would fill the socket's
  // queue and block its sd_notify calls).
  for (std::string m = n.next(3000); !m.empty(); m = n.next(3000)) CHECK_MESSAGE(m.rfind("RELOADING=1", 0) != 0, m);
  CHECK(d->wait_exit() == 0);
  CHECK(collect(c, 1).reason == "length");  // the drain let it finish
  CHECK_MESSAGE(d->log().find("SIGHUP while draining: ignored") != std::string::npos, d->log());
}
