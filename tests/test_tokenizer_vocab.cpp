// Tokenizer against real vocabularies: llama.cpp's ggml-vocab-*.gguf files and their .inp/.out
// vectors (../shared/data/vocab beside the checkout), pre-tokenizer errors, parse_special.
#include <doctest/doctest.h>

#include "engine/gguf_reader.h"
#include "engine/tokenizer.h"
#include "engine/utf8_stream.h"
#include "tests/test_support.h"

#include <algorithm>
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

// ../shared/data/vocab beside the checkout (or under $SPECD_SHARED).
std::string vocab_dir() { return specd::test::shared_dir() + "/data/vocab"; }

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

namespace {

Vocab vocab(const std::string& name) { return load_vocab(vocab_dir() + "/ggml-vocab-" + name + ".gguf"); }

std::string specd_bin() { return specd::test::build_root() + "/daemon/specd"; }

// Runs specd with stderr folded into the output; returns the exit status.
int run_specd(const std::string& args, std::string* out) {
  out->clear();
  return specd::test::run_command(specd_bin().append(" ").append(args).append(" 2>&1"), out);
}

// 'path' for the shell (built with append: GCC 12's -Wrestrict misfires on "'" + std::string).
std::string quoted(const std::string& s) { return std::string("'").append(s).append("'"); }

}  // namespace

TEST_CASE("vocab: BOS, EOS and end-of-turn defaults follow llama.cpp") {
  if (!have_vocab_dir()) return;
  Vocab llama3 = vocab("llama-bpe");
  CHECK(llama3.tok.kind() == Tokenizer::Kind::Bpe);
  CHECK(llama3.tok.pre() == "llama-bpe");
  CHECK(llama3.tok.add_bos_token());  // llama3 pre types add BOS when the file does not say
  CHECK(llama3.tok.tokenize("Hello", true, false) == Ids{128000, 9906});
  CHECK(llama3.tok.tokenize("Hello", false, false) == Ids{9906});
  CHECK(llama3.tok.eot() == 128009);  // "<|eot_id|>", found by its text
  CHECK(llama3.tok.eom() == -1);  // this Llama 3.0 vocab has no "<|eom_id|>"
  Vocab qwen = vocab("qwen2");
  CHECK_FALSE(qwen.tok.add_bos_token());  // other BPE types do not
  CHECK(qwen.tok.tokenize("Hello", true, false) == Ids{9707});
  CHECK(qwen.tok.eot() == 151645);  // "<|im_end|>"
  CHECK(qwen.tok.eom() == -1);
}

TEST_CASE("vocab: special tokens in the text are parsed only with parse_special") {
  if (!have_vocab_dir()) return;
  Vocab llama3 = vocab("llama-bpe");
  const std::string text = "Hi<|eot_id|>";
  const Ids plain = llama3.tok.encode(text, false, false);
  const Ids parsed = llama3.tok.encode(text, false, true);
  CHECK(parsed == Ids{13347, 128009});
  CHECK(plain.size() > 2);
  CHECK(std::find(plain.begin(), plain.end(), 128009) == plain.end());
  CHECK(llama3.tok.decode(plain) == text);   // plain text comes back as it was
  CHECK(llama3.tok.decode(parsed) == "Hi");  // control tokens print nothing
  // SPM too: "<s>" is text unless parse_special.
  Vocab spm = vocab("llama-spm");
  CHECK(spm.tok.encode("<s>", false, true) == Ids{1});
  CHECK(spm.tok.encode("<s>", false, false) != Ids{1});
}

TEST_CASE("vocab: byte-level pieces stream through Utf8Stream as whole characters") {
  if (!have_vocab_dir()) return;
  Vocab gpt2 = vocab("gpt-2");
  const std::string text = "llama 🦙 and 日本語, ünïcödé";
  const Ids ids = gpt2.tok.encode(text, false);
  Utf8Stream stream;
  std::string all;
  bool split_char = false;
  for (int32_t id : ids) {
    const std::string piece = gpt2.tok.piece(-1, id);
    const std::string chunk = stream.push(piece);
    split_char = split_char || chunk != piece;  // some token holds part of a character
    for (size_t i = 0; i < chunk.size();) {  // every chunk is whole UTF-8 characters
      const auto c = static_cast<unsigned char>(chunk[i]);
      const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      REQUIRE(i + n <= chunk.size());
      i += n;
    }
    all += chunk;
  }
  all += stream.flush();
  CHECK(split_char);
  CHECK(all == text);
}

TEST_CASE("specd tokenize: id<TAB>piece lines and --ids, on a vocabulary-only file and a model") {
  if (!have_vocab_dir()) return;
  const std::string tok = std::string("tokenize --model ").append(quoted(vocab_dir() + "/ggml-vocab-llama-bpe.gguf"));
  std::string out;
  REQUIRE(run_specd(tok + " --text 'Hello world'", &out) == 0);
  CHECK(out == "128000\t<|begin_of_text|>\n9906\tHello\n1917\t world\n");
  REQUIRE(run_specd(tok + " --text 'Hello world' --ids", &out) == 0);
  CHECK(out == "[128000, 9906, 1917]\n");
  REQUIRE(run_specd(tok + " --text 'Hello world' --ids --no-bos", &out) == 0);
  CHECK(out == "[9906, 1917]\n");
  REQUIRE(run_specd(tok + " --text 'Hi<|eot_id|>' --ids --no-bos --parse-special", &out) == 0);
  CHECK(out == "[13347, 128009]\n");
  REQUIRE(run_specd(tok + " --text 'Hi<|eot_id|>' --ids --no-bos", &out) == 0);
  CHECK(out.find("128009") == std::string::npos);
  const std::string file = specd::test::temp_dir() + "/tokenize-input.txt";
  std::ofstream(file) << "a\tb\n";
  REQUIRE(run_specd(tok + " --no-bos --file " + quoted(file), &out) == 0);
  CHECK(out == "64\ta\n2282\t\\tb\n198\t\\n\n");  // tab + "b" is one piece: [^\r\n\p{L}\p{N}]?\p{L}+
  // A full model (weights present, not read).
  const std::string model = std::string("tokenize --model ").append(quoted(specd::test::model_path("stories260K.gguf")));
  REQUIRE(run_specd(model + " --text 'Once upon' --ids", &out) == 0);
  CHECK(out == "[1, 403, 407]\n");
}

TEST_CASE("specd tokenize: usage and load errors") {
  std::string out;
  CHECK(run_specd("tokenize --text hi", &out) == 2);
  CHECK(out.find("--model PATH is required") != std::string::npos);
  CHECK(run_specd("tokenize --model x.gguf", &out) == 2);
  CHECK(out.find("exactly one of --text and --file") != std::string::npos);
  CHECK(run_specd("tokenize --model /nonexistent.gguf --text hi", &out) == 1);
  CHECK(out.find("cannot load /nonexistent.gguf") != std::string::npos);
}

TEST_CASE("pretokenizer: every listed pre compiles, an unknown one is a named error") {
  for (std::string_view name : specd::engine::PreTokenizer::supported()) {
    auto p = specd::engine::PreTokenizer::create(name);
    CHECK_MESSAGE(p.has_value(), name << ": " << (p ? "" : p.error().message));
  }
  auto bad = specd::engine::PreTokenizer::create("tekken");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == SPECD_E_UNSUPPORTED);
  CHECK(bad.error().message.find("'tekken'") != std::string::npos);
  // Pieces cover the text exactly, in order; invalid UTF-8 bytes stay in pieces of their own.
  auto gpt2 = specd::engine::PreTokenizer::create("gpt-2");
  REQUIRE(gpt2.has_value());
  const std::string text = "\xff\xfe abc \xc3\x28 it's  42\n";
  size_t at = 0;
  std::vector<std::string> pieces;
  for (const auto& [off, len] : gpt2->split(text)) {
    CHECK(off == at);
    at = off + len;
    pieces.push_back(text.substr(off, len));
  }
  CHECK(at == text.size());
  CHECK(pieces == std::vector<std::string>{"\xff\xfe", " abc", " ", "\xc3", "(", " it", "'s", " ", " 42", "\n"});
}

TEST_CASE("vocab: invalid UTF-8 goes through byte tokens and decodes back byte for byte") {
  if (!have_vocab_dir()) return;
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2"}) {
    Vocab v = vocab(name);
    const std::string text = "\xff\xfe abc \xc3\x28 \xe2\x82 ok\n";
    CHECK_MESSAGE(v.tok.decode(v.tok.encode(text, false)) == text, name);
  }
}
