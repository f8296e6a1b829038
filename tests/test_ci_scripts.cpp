// scripts/sum_tests.py, which prints the last line of every CI run ("N passed, N failed, N skipped")
// and, before it, what failed: fed meson test logs written here, in the format meson writes.
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace specd::test {
namespace {

using json = nlohmann::json;

// A doctest run's stdout: its summary line and, for each failed case, the block doctest prints.
std::string doctest_output(int passed, int failed, const std::vector<std::string>& failed_cases) {
  std::string out = "[doctest] doctest version is \"2.4.9\"\n";
  int line = 10;
  for (const std::string& name : failed_cases) {
    out += "===============================================================================\n";
    out += "../tests/test_x.cpp:" + std::to_string(line) + ":\nTEST CASE:  " + name + "\n\n";
    out += "../tests/test_x.cpp:" + std::to_string(line + 3) + ": ERROR: CHECK( rc == 0 ) is NOT correct!\n";
    out += "  values: CHECK( 130 == 0 )\n\n";
    out += "../tests/test_x.cpp:" + std::to_string(line + 4) + ": ERROR: CHECK( more ) is NOT correct!\n\n";
    line += 20;
  }
  out += "[doctest] test cases: " + std::to_string(passed + failed) + " | " + std::to_string(passed) + " passed | " +
         std::to_string(failed) + " failed | 0 skipped\n";
  return out;
}

// Writes DIR/NAME/meson-logs/testlog.json with one JSON object per line, as meson does.
std::string write_log(const std::string& dir, const std::string& name, const std::vector<json>& rows) {
  const std::string logs = dir + "/" + name + "/meson-logs";
  std::filesystem::create_directories(logs);
  std::string text;
  for (const json& r : rows) text += r.dump() + "\n";
  write_file(logs + "/testlog.json", std::vector<uint8_t>(text.begin(), text.end()));
  return name + "/meson-logs/testlog.json";
}

json row(const std::string& name, const std::string& result, int rc, const std::string& stdout_text) {
  return {{"name", name}, {"result", result}, {"returncode", rc}, {"duration", 12.5}, {"stdout", stdout_text}, {"stderr", ""}};
}

int sum_tests(const std::string& dir, const std::string& logs, std::string* out) {
  return run_command("cd " + dir + " && python3 " + source_root() + "/scripts/sum_tests.py " + logs + " 2>&1", out);
}

}  // namespace

TEST_CASE("sum_tests: all passed sums the doctest cases; a script test and a SKIP count once") {
  const std::string dir = temp_dir();
  const std::string a = write_log(dir, "build", {row("gguf", "OK", 0, doctest_output(12, 0, {})),
                                                  row("tools", "OK", 0, "no doctest here\n"),
                                                  row("forward-cuda", "SKIP", 77, "skipped: no GPU\n")});
  std::string out;
  CHECK(sum_tests(dir, a, &out) == 0);
  CHECK(out == "13 passed, 0 failed, 1 skipped\n");
}

TEST_CASE("sum_tests: each failure is named before the sum, and the exit status is 1") {
  const std::string dir = temp_dir();
  const std::string a = write_log(dir, "build", {row("chat", "FAIL", 1, doctest_output(8, 1, {"specctl chat on a terminal"})),
                                                  row("gguf", "OK", 0, doctest_output(3, 0, {}))});
  const std::string b = write_log(dir, "build-asan", {row("soak", "TIMEOUT", -15, "[doctest] doctest version\n"),
                                                       row("daemon", "FAIL", 1, doctest_output(4, 0, {}))});
  std::string out;
  CHECK(sum_tests(dir, a + " " + b, &out) == 1);
  CHECK_MESSAGE(out.find("FAILED build/chat: \"specctl chat on a terminal\" at ../tests/test_x.cpp:13: CHECK( rc == 0 ) is NOT "
                         "correct!\n") != std::string::npos, out);
  CHECK(out.find("test_x.cpp:14") == std::string::npos);  // the first failed check of a case only
  CHECK_MESSAGE(out.find("FAILED build-asan/soak: TIMEOUT (exit status -15, 12 s)\n") != std::string::npos, out);
  CHECK_MESSAGE(out.find("FAILED build-asan/daemon: FAIL after its cases passed (exit status 1)\n") != std::string::npos, out);
  // The sum: 8 + 3 + 4 passed; the failed case, the timed-out run and the failed process.
  CHECK(out.substr(out.rfind("\n", out.size() - 2) + 1) == "15 passed, 3 failed, 0 skipped\n");
}

TEST_CASE("sum_tests: a log that cannot be read is a failure, named") {
  const std::string dir = temp_dir();
  std::string out;
  CHECK(sum_tests(dir, "build/meson-logs/testlog.json", &out) == 1);
  CHECK(out.find("FAILED build/meson-logs/testlog.json: unreadable\n") != std::string::npos);
  CHECK(out.find("0 passed, 1 failed, 0 skipped\n") != std::string::npos);
}

}  // namespace specd::test
