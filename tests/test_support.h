// Helpers shared by the test suites: where the model files are, temp dirs, running programs.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace specd::test {

// The folder holding stories260K.* ($SPECD_MODELS, else ../shared/models beside the source tree).
std::string models_dir();
std::string model_path(const std::string& file);  // models_dir() + "/" + file
std::string source_root();                         // $SPECD_SOURCE_ROOT
std::string build_root();                          // $SPECD_BUILD_ROOT
// $SPECD_SHARED, else ../shared beside the source tree: data/vocab, data/templates, models.
std::string shared_dir();
// $SPECD_CACHE, else $HOME/.cache/specd: where scripts/train.sh leaves trained models.
std::string cache_dir();
// A trained artifact (e.g. "stories260K-redrafter.gguf"): the first of models_dir(), ../shared/models,
// cache_dir()/models and cache_dir()/models/smoke that holds it; "" when none does (scripts/test.sh
// makes smoke ones before the tests run where no trained one exists).
std::string trained_model(const std::string& file);
// A fresh directory under $TMPDIR, removed at process exit.
std::string temp_dir();
// Where a test that runs programs as another user (root's tests become nobody) finds them:
// "" when not root (run the build tree as it is). As root, a fresh world-readable copy under
// $TMPDIR of what those programs need, laid out like the build tree (daemon/specd beside
// plugins/*.so, clients/specctl beside libspecd-client.so*) plus stories260K.gguf: the checkout may
// sit below a directory only root can enter (CI's does). Throws std::runtime_error when a copy fails.
std::string tree_for_other_user();
// One temp dir per test process that RuntimeFixture allows side files from (daemon.side_file_dirs).
std::string side_dir();
// Run a shell command; returns its exit status and fills out with stdout.
int run_command(const std::string& cmd, std::string* out);
// s as one single-quoted word for /bin/sh, any byte included.
std::string shell_quote(const std::string& s);
std::vector<uint8_t> read_file(const std::string& path);
std::string read_text(const std::string& path);  // the whole file; throws std::runtime_error naming it when unreadable
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
// The 200 golden greedy ids from models/README.md (excluding the leading BOS).
const std::vector<int32_t>& golden_ids();
// The golden text (the README's 200-token story).
std::string golden_text();

// Sets an environment variable for a scope and restores it even when a REQUIRE ends the test case early
// (a leaked SPECD_CACHE would hide the trained drafter from every later test case).
struct ScopedEnv {
  std::string name;
  std::optional<std::string> saved;
  ScopedEnv(const char* n, const std::string& value) : name(n) {
    if (const char* old = std::getenv(n)) saved = old;
    set(value);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const std::string& value) { setenv(name.c_str(), value.c_str(), 1); }
  ~ScopedEnv() {
    if (saved)
      setenv(name.c_str(), saved->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

// A fresh $SPECD_CACHE in the temporary folder with the cost calibration on, for a scope: runtimes
// made in it calibrate into dir/cost (or read what is there). Removed at the scope's end, also when a
// REQUIRE ends the test case early.
struct ScopedCostCache {
  std::string dir;
  ScopedEnv cache, on;
  explicit ScopedCostCache(const std::string& tag);
  ScopedCostCache(const ScopedCostCache&) = delete;
  ScopedCostCache& operator=(const ScopedCostCache&) = delete;
  ~ScopedCostCache();
};

}  // namespace specd::test
