// Test helpers: model paths, temp dirs, subprocesses, the golden ids parsed from the models README.
#include "tests/test_support.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace specd::test {
namespace fs = std::filesystem;

std::string source_root() {
  const char* s = std::getenv("SPECD_SOURCE_ROOT");
  return s ? s : ".";
}

std::string shared_dir() {
  if (const char* s = std::getenv("SPECD_SHARED"); s && *s) return s;
  return (fs::path(source_root()) / ".." / "shared").lexically_normal().string();
}

std::string build_root() {
  const char* s = std::getenv("SPECD_BUILD_ROOT");
  return s ? s : ".";
}

std::string models_dir() {
  if (const char* m = std::getenv("SPECD_MODELS"); m && *m) return m;
  return (fs::path(source_root()) / ".." / "shared" / "models").lexically_normal().string();
}

std::string model_path(const std::string& file) { return models_dir() + "/" + file; }

std::string cache_dir() {
  if (const char* c = std::getenv("SPECD_CACHE"); c && *c) return c;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/specd";
}

// $SPECD_MODELS, then ../shared/models (fully trained, with provenance), then the training cache (full, smoke).
std::string trained_model(const std::string& file) {
  const std::string shared = (fs::path(source_root()) / ".." / "shared" / "models").lexically_normal().string();
  for (const std::string& p : {models_dir() + "/" + file, shared + "/" + file, cache_dir() + "/models/" + file,
                               cache_dir() + "/models/smoke/" + file})
    if (FILE* f = std::fopen(p.c_str(), "rb")) {
      std::fclose(f);
      return p;
    }
  return "";
}

namespace {
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempDirs g_temp;
}  // namespace

std::string temp_dir() {
  const char* t = std::getenv("TMPDIR");
  std::string tmpl = std::string(t && *t ? t : "/tmp") + "/specd-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  g_temp.dirs.emplace_back(buf.data());
  return buf.data();
}

std::string tree_for_other_user() {
  if (::geteuid() != 0) return "";
  const fs::path tree = temp_dir();
  const fs::path build = build_root();
  const auto copy = [&](const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::create_directories(to.parent_path(), ec);
    fs::permissions(to.parent_path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                          fs::perms::others_read | fs::perms::others_exec, ec);
    // Copies the file a symlink names, so libspecd-client.so.1 arrives as a file.
    if (!fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec))
      throw std::runtime_error("tree_for_other_user: cannot copy " + from.string() + ": " + ec.message());
  };
  fs::permissions(tree, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
  copy(build / "daemon/specd", tree / "daemon/specd");
  copy(build / "clients/specctl", tree / "clients/specctl");
  for (const auto& e : fs::directory_iterator(build / "clients"))
    if (e.path().filename().string().starts_with("libspecd-client.so") && !e.is_directory())
      copy(e.path(), tree / "clients" / e.path().filename());
  for (const auto& e : fs::directory_iterator(build / "plugins"))
    if (e.path().extension() == ".so") copy(e.path(), tree / "plugins" / e.path().filename());
  copy(model_path("stories260K.gguf"), tree / "stories260K.gguf");
  return tree.string();
}

std::string side_dir() {
  static const std::string dir = temp_dir();
  return dir;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    if (out) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

namespace {
// The README's fenced blocks: [0] is the story, [1] the 200 ids. Throws (the test case fails with
// this message) rather than return too few: callers index into the ids.
std::vector<std::string> readme_blocks() {
  std::ifstream f(model_path("README.md"));
  std::vector<std::string> blocks;
  std::string line, cur;
  bool in = false;
  while (std::getline(f, line)) {
    if (line.rfind("```", 0) == 0) {
      if (in) blocks.push_back(cur);
      cur.clear();
      in = !in;
      continue;
    }
    if (in) cur += line + "\n";
  }
  if (blocks.size() < 2) {
    throw std::runtime_error("no golden story and ids in " + model_path("README.md") +
                             ": set SPECD_MODELS to the folder holding stories260K.gguf and its README");
  }
  return blocks;
}
}  // namespace

const std::vector<int32_t>& golden_ids() {
  static const std::vector<int32_t> ids = [] {
    auto blocks = readme_blocks();
    std::vector<int32_t> v;
    std::istringstream s(blocks[1]);
    int32_t x;
    while (s >> x) v.push_back(x);
    return v;
  }();
  return ids;
}

std::string golden_text() {
  auto blocks = readme_blocks();
  std::string t = blocks[0];
  if (!t.empty() && t.back() == '\n') t.pop_back();  // the fence adds the last newline
  return t;
}

namespace {
// path, with whatever an earlier run left there removed.
std::string emptied(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  return path.string();
}
}  // namespace

ScopedCostCache::ScopedCostCache(const std::string& tag)
    : dir(emptied(fs::temp_directory_path() / (tag + "_" + std::to_string(::getpid())))),
      cache("SPECD_CACHE", dir),
      on("SPECD_COST_CALIBRATION", "on") {}

ScopedCostCache::~ScopedCostCache() {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace specd::test
