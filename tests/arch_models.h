// The issue-14 test models: random-weight llama / qwen2 / qwen3 GGUFs written by specd-random-model
// (small shape, F32, seed 14) with llama.cpp's vocabularies from ../shared/data/vocab. Made once per
// test process in a temp dir; tests skip (with a message) where the vocabulary files are absent.
#pragma once

#include "engine/model.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace specd::test {

struct ArchCase {
  const char* arch;
  const char* vocab;  // ggml-vocab-NAME.gguf
};
// Keep in step with bench/llamacpp_logits.sh, which records llama.cpp's outputs on the same files.
inline constexpr ArchCase kArchCases[] = {{"llama", "llama-bpe"}, {"qwen2", "qwen2"}, {"qwen3", "qwen2"}};

inline std::string arch_vocab_path(const char* vocab) {
  return shared_dir() + "/data/vocab/ggml-vocab-" + vocab + ".gguf";
}

// The model file for arch (written on first use), or "" with a skip message when its vocabulary is absent.
inline std::string arch_model_path(const ArchCase& c) {
  static std::map<std::string, std::string> made;
  if (auto it = made.find(c.arch); it != made.end()) return it->second;
  const std::string vocab = arch_vocab_path(c.vocab);
  if (!std::filesystem::exists(vocab)) {
    MESSAGE("skipped: no vocabulary file " << vocab);
    return "";
  }
  static const std::string dir = temp_dir();
  const std::string out = dir + "/" + c.arch + ".gguf";
  std::string log;
  const int rc = run_command(build_root() + "/tools/specd-random-model --arch " + c.arch + " --vocab '" + vocab +
                                 "' --shape small --type f32 --seed 14 --out '" + out + "' 2>&1",
                             &log);
  REQUIRE_MESSAGE(rc == 0, log);
  return made[c.arch] = out;
}

// The loaded model for arch (kept for the process), or nullptr when skipped.
inline const engine::Model* arch_model(const ArchCase& c) {
  static std::map<std::string, std::unique_ptr<engine::Model>> loaded;
  if (auto it = loaded.find(c.arch); it != loaded.end()) return it->second.get();
  const std::string path = arch_model_path(c);
  if (path.empty()) return nullptr;
  auto m = engine::Model::load(path);
  REQUIRE_MESSAGE(m.has_value(), path << ": " << (m ? "" : m.error().message));
  return (loaded[c.arch] = std::move(m.value())).get();
}

}  // namespace specd::test
