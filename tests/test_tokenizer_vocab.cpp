// Tokenizer against real vocabularies: llama.cpp's ggml-vocab-*.gguf files and their .inp/.out
// vectors (../shared/data/vocab beside the checkout), pre-tokenizer errors, parse_special.
#include <doctest/doctest.h>

#include "engine/gguf_reader.h"
#include "engine/tokenizer.h"
#include "engine/utf8_stream.h"
#include "tests/test_support.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using specd::engine::GgufFile;
using specd::engine::Tokenizer;
using specd::engine::Utf8Stream;

namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

// ../shared/data/vocab beside the checkout, found the way models_dir() finds ../shared/models.
std::string vocab_dir() {
  return (fs::path(specd::test::source_root()) / ".." / "shared" / "data" / "vocab").lexically_normal().string();
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// llama.cpp's test-tokenizer-0 format: .inp holds the strings, each followed by a line
// "__ggml_vocab_test__"; .out has one line of space-separated ids per string.
struct Case {
  std::string text;
  Ids ids;
};

std::vector<Case> load_cases(const std::string& gguf) {
  const std::string inp = read_all(gguf + ".inp"), out = read_all(gguf + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    texts.push_back(inp.substr(pos, hit - pos));
  std::vector<Ids> ids;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    Ids v;
    std::istringstream in(line);
    for (int32_t x; in >> x;) v.push_back(x);
    ids.push_back(std::move(v));
  }
  REQUIRE_MESSAGE(texts.size() == ids.size(), gguf << ": " << texts.size() << " strings but " << ids.size() << " id lines");
  std::vector<Case> cases;
  for (size_t i = 0; i < texts.size(); ++i) cases.push_back({texts[i], ids[i]});
  return cases;
}

std::string ids_text(const Ids& v) {
  std::string s;
  for (int32_t x : v) s.append(s.empty() ? "" : " ").append(std::to_string(x));
  return s;
}

struct Vocab {
  std::unique_ptr<GgufFile> file;
  Tokenizer tok;
};

Vocab load_vocab(const std::string& path) {
  auto f = GgufFile::open(path);
  REQUIRE_MESSAGE(f.has_value(), path << ": " << (f ? "" : f.error().message));
  auto t = Tokenizer::from_gguf(**f);
  REQUIRE_MESSAGE(t.has_value(), path << ": " << (t ? "" : t.error().message));
  return {std::move(f.value()), std::move(t.value())};
}

bool have_vocab_dir() {
  if (fs::is_directory(vocab_dir())) return true;
  MESSAGE("skipped: no vocabulary files at " << vocab_dir());
  return false;
}

// Every vector of one vocab file, id for id, and decode(encode(x)) == x.
void check_vocab(const std::string& name) {
  const std::string path = vocab_dir() + "/ggml-vocab-" + name + ".gguf";
  Vocab v = load_vocab(path);
  const std::vector<Case> cases = load_cases(path);
  REQUIRE(!cases.empty());
  int failed = 0;
  for (const Case& c : cases) {
    const Ids got = v.tok.encode(c.text, false);
    if (got != c.ids) ++failed;
    CHECK_MESSAGE(got == c.ids, name << ": '" << c.text << "'\n  want " << ids_text(c.ids) << "\n  got  " << ids_text(got));
    // SPM adds a space prefix that the first piece after BOS drops again; BPE keeps bytes as they are.
    const bool spm = v.tok.kind() == Tokenizer::Kind::Spm;
    const Ids with = spm ? v.tok.encode(c.text, true) : got;
    std::string back = spm ? v.tok.decode(with) : v.tok.decode(got);
    CHECK_MESSAGE(back == c.text, name << ": decode(encode('" << c.text << "')) = '" << back << "'");
  }
  MESSAGE(name << ": " << cases.size() - failed << "/" << cases.size() << " vectors equal");
}

}  // namespace

TEST_CASE("vocab: llama-bpe") { if (have_vocab_dir()) check_vocab("llama-bpe"); }
TEST_CASE("vocab: qwen2") { if (have_vocab_dir()) check_vocab("qwen2"); }
TEST_CASE("vocab: qwen35") { if (have_vocab_dir()) check_vocab("qwen35"); }
TEST_CASE("vocab: gpt-2") { if (have_vocab_dir()) check_vocab("gpt-2"); }
TEST_CASE("vocab: deepseek-llm") { if (have_vocab_dir()) check_vocab("deepseek-llm"); }
TEST_CASE("vocab: deepseek-coder") { if (have_vocab_dir()) check_vocab("deepseek-coder"); }
TEST_CASE("vocab: falcon") { if (have_vocab_dir()) check_vocab("falcon"); }
TEST_CASE("vocab: starcoder") { if (have_vocab_dir()) check_vocab("starcoder"); }
TEST_CASE("vocab: refact") { if (have_vocab_dir()) check_vocab("refact"); }
TEST_CASE("vocab: command-r") { if (have_vocab_dir()) check_vocab("command-r"); }
TEST_CASE("vocab: mpt") { if (have_vocab_dir()) check_vocab("mpt"); }
TEST_CASE("vocab: llama-spm") { if (have_vocab_dir()) check_vocab("llama-spm"); }
TEST_CASE("vocab: phi-3") { if (have_vocab_dir()) check_vocab("phi-3"); }
