// Side files (daemon/side_file_policy.h, daemon/side_files.h): only the allowed directories, read
// into owned memory, errors that name the path and never echo the file. Regressions of an outside
// probe: drafter=/etc/shadow answered "bad magic 72 6f 6f 74", told which paths exist, and a drafter
// truncated under a running request killed the daemon with SIGBUS.
#include "daemon/side_files.h"
#include "engine/gguf_writer.h"
#include "tests/daemon_harness.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace specd;
using namespace specd::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSecret = "SECRET-CONTENT root:x:0:0";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A GGUF side file with one F32 tensor of n floats 0, 1, 2, ...
std::string write_gguf(const std::string& path, int n = 64) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  engine::GgufWriter w;
  w.set_i32("side.answer", 42);
  REQUIRE(w.add_tensor("side.v", specd::GgmlType::F32, {n}, {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4}));
  REQUIRE(w.write(path));
  return path;
}

struct Dirs {
  std::string allowed = temp_dir(), outside = temp_dir();
  Dirs() {
    write_text(outside + "/secret.txt", kSecret);
    write_gguf(outside + "/valid.gguf");
  }
};

// The error of opening path: the code, and a message that names the path and holds no secret.
Error open_error(daemon::SideFiles& sf, const std::string& path) {
  auto r = sf.open(path);
  REQUIRE_FALSE(r.has_value());
  const std::string& m = r.error().message;
  CHECK_MESSAGE(m.find(path) != std::string::npos, m);
  CHECK_MESSAGE(m.find("SECRET") == std::string::npos, m);
  CHECK_MESSAGE(m.find("root") == std::string::npos, m);
  return r.error();
}

}  // namespace

TEST_CASE("side files: a path outside the allowed directories is ACCESS, whether or not it exists") {
  Dirs d;
  daemon::SideFiles sf({d.allowed}, 1 << 20);
  fs::create_symlink(d.outside + "/secret.txt", d.allowed + "/link.gguf");
  fs::create_symlink(d.outside + "/absent.gguf", d.allowed + "/dangling.gguf");
  fs::create_symlink(d.outside, d.allowed + "/out");
  fs::create_directory(d.allowed + "/sub");
  write_gguf(d.allowed + "/sub/nested.gguf");
  const std::string up = d.allowed + "/../" + fs::path(d.outside).filename().string();
  for (const std::string& p : {std::string("/etc/passwd"), std::string("/etc/shadow"), std::string("/etc/no-such-file"),
                               d.outside + "/secret.txt", d.outside + "/valid.gguf", d.outside + "/absent.gguf",
                               d.allowed + "/link.gguf", d.allowed + "/dangling.gguf", d.allowed + "/out/secret.txt",
                               d.allowed + "/out/absent.gguf", up + "/secret.txt", up + "/absent.gguf",
                               d.allowed + "/sub/nested.gguf", d.allowed + "/sub/absent.gguf", d.allowed,
                               std::string("relative.gguf"), std::string("")}) {
    CAPTURE(p);
    const Error e = open_error(sf, p);
    CHECK(e.code == SPECD_E_ACCESS);
    CHECK_MESSAGE(e.message.find("daemon.side_file_dirs") != std::string::npos, e.message);
  }
  CHECK(sf.size() == 0);
  // Existing or not, the answer reads the same but for the path.
  const Error a = open_error(sf, d.outside + "/secret.txt"), b = open_error(sf, d.outside + "/absent.txt");
  CHECK(a.message.substr(a.message.find(".txt")) == b.message.substr(b.message.find(".txt")));
}

TEST_CASE("side files: inside an allowed directory, errors are named and never echo the file") {
  Dirs d;
  daemon::SideFiles sf({d.outside + "/../" + fs::path(d.allowed).filename().string()}, 4096);  // the list may hold ".."
  CHECK(open_error(sf, d.allowed + "/absent.gguf").code == SPECD_E_IO);
  write_text(d.allowed + "/text.gguf", kSecret);
  const Error magic = open_error(sf, d.allowed + "/text.gguf");
  CHECK(magic.code == SPECD_E_BAD_MODEL);
  CHECK_MESSAGE(magic.message.find("bad magic") != std::string::npos, magic.message);
  CHECK_MESSAGE(magic.message.find("53 45") == std::string::npos, magic.message);  // "SE" as hex
  REQUIRE(::mkfifo((d.allowed + "/fifo.gguf").c_str(), 0600) == 0);
  CHECK(open_error(sf, d.allowed + "/fifo.gguf").code == SPECD_E_IO);  // refused, and no hang in open()
  fs::create_directory(d.allowed + "/dir.gguf");
  CHECK(open_error(sf, d.allowed + "/dir.gguf").code == SPECD_E_IO);
  write_gguf(d.allowed + "/big.gguf", 4096);
  const Error big = open_error(sf, d.allowed + "/big.gguf");
  CHECK(big.code == SPECD_E_LIMIT);
  CHECK_MESSAGE(big.message.find("limits.max_side_file_bytes") != std::string::npos, big.message);
  // A symlink between files of allowed directories is fine.
  write_gguf(d.allowed + "/v1.gguf");
  fs::create_symlink("v1.gguf", d.allowed + "/latest.gguf");
  auto ok = sf.open(d.allowed + "/latest.gguf");
  REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
  CHECK((*ok)->get_int("side.answer") == 42);
}

TEST_CASE("side files: a file truncated or rewritten after it was attached changes nothing (no SIGBUS)") {
  const std::string dir = temp_dir();
  daemon::SideFiles sf({dir}, 1 << 20);
  const std::string p = write_gguf(dir + "/drafter.gguf", 4096);  // 16 KiB of data: several pages
  auto f = sf.open(p);
  REQUIRE(f.has_value());
  const std::shared_ptr<const engine::GgufFile> file = *f;
  fs::resize_file(p, 0);  // a mapping would fault on the next touch of its pages
  write_text(p, "garbage");
  const engine::GgufTensorInfo* t = file->tensor("side.v");
  REQUIRE(t != nullptr);
  float sum = 0;
  for (int i = 0; i < 4096; ++i) {
    float x;
    std::memcpy(&x, t->data + 4 * i, 4);
    sum += x;
  }
  CHECK(sum == doctest::Approx(4095.0 * 4096.0 / 2));
  CHECK(file->get_int("side.answer") == 42);
  const Error e = open_error(sf, p);  // the new contents are read (and refused) on the next open
  CHECK(e.code == SPECD_E_BAD_MODEL);
}

TEST_CASE("side files: the default directories are the model's folder and the training cache") {
  const char* old = std::getenv("SPECD_CACHE");
  const std::string saved = old ? old : "";
  setenv("SPECD_CACHE", "/c", 1);
  CHECK(daemon::default_side_file_dirs("/m/stories260K.gguf") ==
        std::vector<std::string>{"/m", "/c/models", "/c/models/smoke"});
  CHECK(daemon::default_side_file_dirs("stories260K.gguf").front() == ".");
  if (old)
    setenv("SPECD_CACHE", saved.c_str(), 1);
  else
    unsetenv("SPECD_CACHE");
}

TEST_CASE("specd generate: drafter=/etc/passwd is ACCESS, with no byte of the file in the message") {
  std::string out;
  const std::string cmd = build_root() + "/daemon/specd generate --model " + model_path("stories260K.gguf") +
                          " --prompt-ids 1 --max-tokens 4 --decoder redrafter --decoder-opt drafter=/etc/passwd --json 2>&1";
  CHECK(run_command(cmd, &out) == 4);  // access denied, as through the daemon (cli/exit_codes.h)
  CHECK_MESSAGE(out.find("\"error\":\"ACCESS\"") != std::string::npos, out);
  CHECK_MESSAGE(out.find("option 'drafter'") != std::string::npos, out);
  CHECK_MESSAGE(out.find("/etc/passwd") != std::string::npos, out);
  CHECK_MESSAGE(out.find("root") == std::string::npos, out);
  out.clear();
  const std::string dir = temp_dir();  // allowed with --side-file-dir
  write_text(dir + "/x.gguf", kSecret);
  CHECK(run_command(build_root() + "/daemon/specd generate --model " + model_path("stories260K.gguf") +
                        " --prompt-ids 1 --max-tokens 4 --decoder redrafter --side-file-dir " + dir +
                        " --decoder-opt drafter=" + dir + "/x.gguf --json 2>&1",
                    &out) == 1);
  CHECK_MESSAGE(out.find("\"error\":\"BAD_MODEL\"") != std::string::npos, out);
  CHECK_MESSAGE(out.find("SECRET") == std::string::npos, out);
}

// Over the socket, as the probe did it: any client could send these.
TEST_CASE("daemon: drafter outside the side-file dirs is an ACCESS error; a drafter truncated mid-run kills nothing") {
  const std::string trained = model_path("stories260K-redrafter.gguf");
  if (!fs::exists(trained)) {
    MESSAGE("no stories260K-redrafter.gguf beside the model; not checked");
    return;
  }
  const std::string dir = temp_dir();
  const std::string drafter = dir + "/d.gguf";
  fs::copy_file(trained, drafter);  // a private copy in a temp dir, to truncate
  const std::string outside = temp_dir();
  write_text(outside + "/secret.txt", kSecret);
  DaemonProcess d({"--side-file-dir", dir});
  REQUIRE(d.wait_ready());
  RawClient c(d.socket());
  REQUIRE(c.send(hello_frame()));
  REQUIRE_FALSE(c.recv().empty());
  uint64_t rid = 1;
  for (const std::string& p : {std::string("/etc/passwd"), outside + "/secret.txt", outside + "/absent.gguf",
                               dir + "/../" + fs::path(outside).filename().string() + "/secret.txt"}) {
    CAPTURE(p);
    GenParams g;
    g.decoder = "redrafter";
    g.options = R"({"drafter": ")" + p + R"("})";
    REQUIRE(c.send(generate_frame(rid, g)));
    const GenOutcome o = collect(c, rid++);
    CHECK(o.error_name == "ACCESS");
    CHECK_MESSAGE(o.error_message.find(p) != std::string::npos, o.error_message);
    CHECK_MESSAGE(o.error_message.find("root") == std::string::npos, o.error_message);
    CHECK_MESSAGE(o.error_message.find("SECRET") == std::string::npos, o.error_message);
  }
  GenParams g;
  g.decoder = "redrafter";
  g.options = R"({"drafter": ")" + drafter + R"("})";
  g.max_tokens = 400;
  g.prompt_text = "Once";
  REQUIRE(c.send(generate_frame(rid, g)));
  const auto first = c.recv_for(rid);  // the run is under way (a TokenEvent, or it already ended)
  REQUIRE_FALSE(first.empty());
  c.unread(rid, first);
  fs::resize_file(drafter, 0);
  write_text(drafter, "junk");
  const GenOutcome o = collect(c, rid);
  CHECK(o.finished);
  CHECK(o.error_name.empty());
  g.max_tokens = 8;  // the daemon is alive and serves: the rewritten file is read (and refused) anew
  REQUIRE(c.send(generate_frame(rid + 1, g)));
  const GenOutcome again = collect(c, rid + 1);
  CHECK(again.error_name == "BAD_MODEL");
  CHECK_MESSAGE(again.error_message.find("junk") == std::string::npos, again.error_message);
}
