// The Debian packages end to end: scripts/package.sh builds them (lintian must pass), they install
// into a throwaway root (an overlay over this machine's /, tests/package/throwaway_root.sh), and the
// installed daemon runs as systemd would run it (tests/package/e2e.sh): socket activation, sd_notify,
// a client in the specd group, an out-of-tree plugin and a C client built from the installed SDK,
// SIGHUP and SIGTERM. Each check e2e.sh reports is one CHECK here.
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>

using namespace specd::test;

namespace {

bool have(const std::string& tool) { return run_command("command -v " + tool + " >/dev/null 2>&1", nullptr) == 0; }

const std::string& deb_dir() {
  static const std::string dir = temp_dir() + "/deb";
  return dir;
}
const std::string& root_state() {
  static const std::string dir = temp_dir() + "/root";
  return dir;
}

bool g_built = false;
bool g_installed = false;

// Runs one e2e.sh step in the throwaway root; every "ok: X" / "FAIL: X" line becomes a CHECK.
// Returns false when the root could not be made (not root, no overlay): the caller skips.
bool run_step(const std::string& args) {
  std::string out;
  const int rc = run_command(source_root() + "/tests/package/throwaway_root.sh " + root_state() + " " + source_root() +
                                 "/tests/package/e2e.sh " + args + " 2>&1",
                             &out);
  if (rc == 77) {
    MESSAGE("skipped: " << out);
    return false;
  }
  std::istringstream in(out);
  std::string line, failure_detail;
  int checks = 0;
  while (std::getline(in, line)) {
    if (line.rfind("ok: ", 0) == 0) {
      ++checks;
      CHECK_MESSAGE(true, line);
    } else if (line.rfind("FAIL: ", 0) == 0) {
      ++checks;
      CHECK_MESSAGE(false, line << "\n" << out);
    }
  }
  CHECK_MESSAGE(checks > 0, out);
  CHECK_MESSAGE(rc == 0, out);
  return true;
}

}  // namespace

TEST_CASE("package: scripts/package.sh builds the six packages and lintian reports nothing") {
  if (!have("dpkg-buildpackage") || !have("lintian") || !have("dh")) {
    MESSAGE("skipped: debhelper, dpkg-dev or lintian missing (scripts/setup.sh installs them)");
    return;
  }
  std::string out;
  const int rc = run_command(source_root() + "/scripts/package.sh " + deb_dir() + " 2>&1", &out);
  REQUIRE_MESSAGE(rc == 0, out);
  for (const char* pkg : {"specd_", "specd-tools_", "specd-train_", "libspecd-client1_", "libspecd-client-dev_",
                          "specd-plugin-dev_"}) {
    std::string ls;
    CHECK_MESSAGE(run_command("ls " + deb_dir() + "/" + pkg + "*.deb", &ls) == 0, pkg << " was not built:\n" << out);
  }
  g_built = true;
}

TEST_CASE("package: the packages install into a throwaway root as an admin would") {
  if (!g_built) {
    MESSAGE("skipped: no packages were built");
    return;
  }
  g_installed = run_step("install " + deb_dir() + " " + model_path("stories260K.gguf"));
}

TEST_CASE("package: the installed daemon serves under systemd's protocols, with a plugin and a client built from the SDK") {
  if (!g_installed) {
    MESSAGE("skipped: the packages were not installed");
    return;
  }
  run_step("serve");
}

TEST_CASE("package: the installed tools work: specd-train's drafter runs lossless with redrafter, a specd-random-model model generates") {
  if (!g_installed) {
    MESSAGE("skipped: the packages were not installed");
    return;
  }
  run_step("tools");
}
