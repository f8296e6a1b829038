// [limits] plugin_bytes through a real daemon: a decoder that asks the host for more memory than
// the limit gets NULL / SPECD_E_NOMEM, its request ends with that error, the daemon's log names the
// setting, and the requests after it run as usual.
#include "tests/daemon_harness.h"
#include "tests/test_support.h"

#include <fstream>

using namespace specd;
using namespace specd::test;

namespace {

// The built-in decoders and tests/plugins' misbehave, whose huge_alloc mode asks mem_alloc for
// SIZE_MAX - 7 bytes, then 64 MiB, and huge_buf buf_create for 16 Mi floats (64 MiB).
std::vector<std::string> with_misbehave(std::vector<std::string> more = {}) {
  std::vector<std::string> a = {"--plugin-dir", build_root() + "/plugins", "--plugin-dir", build_root() + "/tests/plugins"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

GenOutcome run(RawClient& c, uint64_t rid, const std::string& decoder, const std::string& options) {
  GenParams p;
  p.max_tokens = 8;
  p.decoder = decoder;
  p.options = options;
  REQUIRE(c.send(generate_frame(rid, p)));
  return collect(c, rid);
}

}  // namespace

TEST_CASE("serve: [limits] plugin_bytes refuses a decoder's allocation past it; only that request fails") {
  const std::string dir = temp_dir();
  const std::string conf = dir + "/specd.toml";
  std::ofstream(conf) << "[limits]\nplugin_bytes = 16777216\n";
  DaemonProcess d(with_misbehave({"--config", conf}));
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  RawClient c(d.socket());
  for (const char* mode : {"huge_alloc", "huge_buf"}) {
    CAPTURE(mode);
    const GenOutcome hog = run(c, 1, "misbehave", std::string(R"({"mode": ")") + mode + "\"}");
    CHECK_FALSE(hog.finished);
    CHECK(hog.error_code == SPECD_E_NOMEM);
    CHECK(hog.error_name == "NOMEM");
    CHECK_MESSAGE(hog.error_message.find("the host refused both") != std::string::npos, hog.error_message);
    for (const char* decoder : {"ar", "misbehave"}) {  // the next request, the same decoder's too, runs
      const GenOutcome next = run(c, 2, decoder, "");
      CHECK_MESSAGE(next.finished, next.error_message);
      CHECK(next.reason == "length");
      CHECK(next.generated_tokens == 8);
    }
  }
  // 64 MiB and the host's header for it, refused by the setting the log names.
  CHECK_MESSAGE(d.log().find("decoder memory: refused 671088") != std::string::npos, d.log());
  CHECK_MESSAGE(d.log().find("(limits.plugin_bytes is 16777216, ") != std::string::npos, d.log());
}

TEST_CASE("serve: --plugin-bytes sets the limit; the default lets 64 MiB through") {
  for (const bool small : {true, false}) {
    CAPTURE(small);
    DaemonProcess d(with_misbehave(small ? std::vector<std::string>{"--plugin-bytes", "16777216"} : std::vector<std::string>{}));
    REQUIRE_MESSAGE(d.wait_ready(), d.log());
    RawClient c(d.socket());
    const GenOutcome hog = run(c, 1, "misbehave", R"({"mode": "huge_alloc"})");
    CHECK_FALSE(hog.finished);
    // Granted, misbehave touches the memory and then fails its request on purpose (INTERNAL).
    CHECK(hog.error_code == (small ? SPECD_E_NOMEM : SPECD_E_INTERNAL));
    if (!small) CHECK_MESSAGE(hog.error_message.find("mem_alloc(67108864) succeeded") != std::string::npos, hog.error_message);
  }
}
