// What `specd serve` tells people: the start-up summary and one line per request at info level,
// nothing but errors at --log-level error; and a normal user's daemon with no paths given, found by
// specctl without $SPECD_SOCKET (clients/default_paths.h), its directories private.
#include "daemon/decode_runtime.h"
#include "daemon/model_loading.h"
#include "tests/daemon_harness.h"
#include "tests/runtime_fixture.h"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace specd;
using namespace specd::test;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Resident memory of this process, in bytes (/proc/self/statm's second field, in pages).
size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t total = 0, resident = 0;
  f >> total >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// One greedy request of n tokens, run to its end.
void generate(const DaemonProcess& d, int32_t n) {
  RawClient c(d.socket());
  GenParams p;
  p.max_tokens = n;
  REQUIRE(c.send(generate_frame(1, p)));
  REQUIRE(collect(c, 1).finished);
}

}  // namespace

TEST_CASE("serve log: a start-up summary and one line per request at info; --log-level error keeps them out") {
  {
    DaemonProcess d;
    REQUIRE_MESSAGE(d.wait_ready(), d.log());
    generate(d, 5);
    std::string log;
    for (int i = 0; i < 100 && !has(log, "run 1: "); ++i) {  // written as the run's row is queued
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      log = d.log();
    }
    for (const char* want : {"loading model 'stories' from ", "model 'stories' loaded (1 MiB)", "decoders: ar 1.0.0 (",
                             "engine: 2 compute threads; limits.kv_bytes 1024 MiB split evenly between 1 model",
                             "model 'stories': llama, 5 layers, F32 weights", "KV cache ",
                             "run 1: model stories, decoder ar, ", " + 5 generated tokens, TPF ", "tok/s, TTFT ",
                             " ms, length"})
      CHECK_MESSAGE(has(log, want), want << "\n" << log);
  }
  DaemonProcess quiet({"--log-level", "error"});
  REQUIRE_MESSAGE(quiet.wait_ready(), quiet.log());
  generate(quiet, 5);
  const std::string quiet_log = quiet.log();
  CHECK_MESSAGE(!has(quiet_log, "decoders: "), quiet_log);
  CHECK_MESSAGE(!has(quiet_log, "run 1: "), quiet_log);
  // Under journald (stderr is $JOURNAL_STREAM's file) a line carries its syslog priority instead of "specd: ".
  const std::string dir = temp_dir(), serve = build_root() + "/daemon/specd serve --model x=" + dir + "/none.gguf --socket " +
                                                 dir + "/s.sock --runlog " + dir + "/r.db";
  std::string out;
  REQUIRE(run_command("sh -c 'exec 2>" + dir + "/j.log; JOURNAL_STREAM=$(stat -c %d:%i " + dir + "/j.log) " + serve + "'",
                      &out) == 1);
  auto journal = read_file(dir + "/j.log");
  CHECK(std::string(journal.begin(), journal.end()).rfind("<6>loading model 'x' from ", 0) == 0);
  out.clear();
  REQUIRE(run_command("JOURNAL_STREAM=1:2 " + serve + " 2>&1", &out) == 1);  // inherited, but stderr is elsewhere
  CHECK(out.rfind("specd: loading model 'x' from ", 0) == 0);
  out.clear();
  CHECK(run_command(build_root() + "/daemon/specd serve --log-level loud --model x.gguf 2>&1", &out) == 2);
  CHECK_MESSAGE(has(out, "--log-level: log level 'loud' is not one of error, warn, info, debug"), out);
}

TEST_CASE("serve paths: a normal user's daemon needs no paths; specctl finds it; its directories are private") {
  namespace fs = std::filesystem;
  const std::string dir = temp_dir();
  fs::permissions(dir, fs::perms::all);  // the unprivileged user below must get in
  // As root, become nobody, running a copy nobody can reach; as anyone else, stay.
  const std::string tree = tree_for_other_user();
  const std::string programs = tree.empty() ? build_root() : tree;
  const std::string model = tree.empty() ? model_path("stories260K.gguf") : tree + "/stories260K.gguf";
  const std::string as_user = tree.empty() ? "" : "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  const std::string script =
      "cd " + dir + " && env -i PATH=/usr/bin:/bin HOME=" + dir + "/user XDG_RUNTIME_DIR=" + dir + "/run " + as_user +
      "sh -c '" + programs + "/daemon/specd serve --model s=" + model + " --threads 1 >" + dir +
      "/log 2>&1 & pid=$!; for i in $(seq 400); do [ -S " + dir + "/run/specd/specd.sock ] && break; sleep 0.05; done; " +
      "LD_LIBRARY_PATH=" + programs + "/clients " + programs + "/clients/specctl generate --prompt hi --max-tokens 3 >" + dir +
      "/out 2>&1; rc=$?; kill $pid; wait $pid; exit $rc'";
  fs::create_directories(dir + "/run");
  fs::permissions(dir + "/run", fs::perms::all);
  std::string ignored;
  const int rc = run_command(script, &ignored);
  const auto text = [&](const char* f) {
    auto b = read_file(dir + "/" + f);
    return std::string(b.begin(), b.end());
  };
  CHECK_MESSAGE(rc == 0, text("out") << "\n" << text("log"));
  CHECK_MESSAGE(has(text("log"), "serving on " + dir + "/run/specd/specd.sock"), text("log"));
  CHECK(fs::exists(dir + "/user/.local/state/specd/runs.db"));
  for (const char* sub : {"/run/specd", "/user/.local", "/user/.local/state", "/user/.local/state/specd"}) {
    struct stat st {};
    REQUIRE(::stat((dir + sub).c_str(), &st) == 0);
    CHECK_MESSAGE((st.st_mode & 0777) == 0700, sub);
  }
}

TEST_CASE("cold start: the weights are read in at load; TTFT counts from the request's arrival") {
  std::vector<uint8_t> bytes((size_t{3} << 20) + 123, 1);
  std::atomic<size_t> done{0};
  daemon::prefault(bytes, 3, &done);
  CHECK(done.load() == bytes.size());
  daemon::prefault({}, 2, nullptr);  // nothing to read: fine

  RuntimeFixture f({}, {"ar"});
  auto req = request({1}, 2);
  req.arrived = std::chrono::steady_clock::now() - std::chrono::milliseconds(300);  // waited in the queue
  const auto r = f.run(req);
  CHECK(r.prefill_seconds >= 0.3);
  CHECK(f.run(request({1}, 2)).prefill_seconds < 0.3);  // unset: from submit
  auto missing = daemon::load_model_with_progress("m", "/nonexistent.gguf", 1);
  REQUIRE_FALSE(missing.has_value());
  CHECK(has(missing.error().message, "cannot load model 'm' from /nonexistent.gguf"));
}

TEST_CASE("cold start: the KV cache is not written before use (pages are touched as blocks are used)") {
  daemon::RuntimeLimits limits;
  limits.max_sequences = 512;  // so stories260K's useful KV is large: 512 sequences at full context
  const size_t before = resident_bytes();
  RuntimeFixture f(limits, {"ar"});
  const size_t kv = f.rt.kv().storage_bytes();
  REQUIRE(kv >= (size_t{512} << 20));
  CHECK_MESSAGE(resident_bytes() - before < kv / 4, "resident grew by " << (resident_bytes() - before) << " of " << kv);
  CHECK(f.run(request({1}, 8)).tokens == std::vector<int32_t>(golden_ids().begin(), golden_ids().begin() + 8));
}
