// The README's doc test (issue 16): every command README.md shows is run here against the build
// tree and the default model, or listed below as skipped with the reason. A command added to the
// README that is neither fails "every command the README shows is run or listed".
#include "tests/daemon_harness.h"
#include "tests/http_client.h"
#include "tests/readme_commands.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>

using namespace specd::test;

namespace {

// What cannot run in a test, and why.
const std::map<std::string, std::string> kSkipped = {
    {"scripts/run.sh", "installs packages and builds the tree the tests run from (it runs what this file runs)"},
    {"scripts/test.sh", "runs every suite, this one included, in two builds"},
    {"sudo apt install ./build-deb/*.deb", "root and a package install (tests/test_package.cpp does it in a throwaway root)"},
    {"sudoedit /etc/specd/specd.toml", "root, an interactive editor"},
    {"sudo usermod -aG specd \"$USER\"", "root, changes the machine's users"},
    {"journalctl -u specd", "the installed unit's journal (tests/test_package.cpp)"},
    {"gpu-bundle/scripts/gpu-check.sh OUTDIR [--quick]", "a GPU machine and a gpu-bundle"},
    {"scripts/train.sh", "PyTorch training, minutes"},
    {"bench/fuzz.sh", "a clang libFuzzer build of its own"},
    {"bench/soak.sh", "an ASan build and minutes (tests/test_soak.cpp runs a short soak)"},
    {"bench/compare_llamacpp.sh", "a llama.cpp build"},
};

// Run here; the test cases below take their text from the README through shown().
const std::set<std::string> kRun = {
    "specctl generate --prompt \"Once upon a time\"",
    "curl -s http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \\",
    "curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\",
    "curl -s http://127.0.0.1:8080/metrics",
    "echo 'Once upon a time' | build/clients/specctl chat --max-tokens 20",
    "build/daemon/specd generate", "build/daemon/specd serve", "build/daemon/specd decoders",
    "build/daemon/specd tokenize", "build/daemon/specd perplexity", "build/clients/specctl",
    "build/clients/specctl models", "build/clients/specctl chat", "--decoder", "build/tools/specd-add-mask",
    "build/tools/specd-convert", "build/tools/specd-random-model", "build/tools/specd-quantize",
    "build/tools/specd-inflate", "build/bench/specd-bench",
};

const std::string& readme() {
  static const std::string text = read_text(source_root() + "/README.md");
  return text;
}

// The README's command listed by key; fails when the README no longer shows it.
specd::test::ReadmeCommand shown(const std::string& key) {
  REQUIRE_MESSAGE(kRun.count(key), key << " is not in kRun");
  for (const auto& c : readme_commands(readme()))
    if (c.key == key) return c;
  FAIL("README.md no longer shows " << key);
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::string stories() { return model_path("stories260K.gguf"); }
std::string bin(const std::string& rel) { return build_root() + "/" + rel; }

// Runs a shell command with stderr folded into the output.
int sh(const std::string& cmd, std::string* out) {
  out->clear();
  return run_command("(" + cmd + ") </dev/null 2>&1", out);
}

// Every `from` in *s replaced by `to` (which may contain `from`).
void replace_all(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) s->replace(at, from.size(), to);
}

// A README command line as it runs here: `build/` is this build tree, bare `specctl` is found on
// PATH in it, and the daemon is the one at `socket` (SPECD_SOCKET, as scripts/run.sh sets it).
std::string as_here(std::string command, const std::string& socket, int http_port) {
  replace_all(&command, "build/", build_root() + "/");
  replace_all(&command, "127.0.0.1:8080", "127.0.0.1:" + std::to_string(http_port));
  return "export PATH=" + shell_quote(bin("clients")) + ":\"$PATH\" SPECD_SOCKET=" + shell_quote(socket) + "; " + command;
}

// A build configured with -Dbenchmarks=false (the sanitizer build) has no bench/ programs.
bool benchmarks_built() { return std::filesystem::exists(bin("bench/specd-bench")); }

// Every option a table row names appears in the --help of the program (or programs) it is about.
void check_row_options(const ReadmeCommand& row, const std::vector<std::string>& help_commands) {
  for (const std::string& help_command : help_commands) {
    if (help_command.starts_with(bin("bench/")) && !benchmarks_built()) {
      MESSAGE("skipped: " << help_command << " --help (this build has no benchmarks, -Dbenchmarks=false)");
      continue;
    }
    std::string help;
    REQUIRE_MESSAGE(sh(help_command + " --help", &help) == 0, help);
    for (const std::string& option : options_named(row.text))
      CHECK_MESSAGE(help_names(help, option), "README line " << row.line << " names " << option << ", which `"
                                                             << help_command << " --help` does not:\n" << help);
  }
}

// The program a table row is about, as this build tree has it ("build/tools/x" -> BUILD/tools/x).
std::string row_program(const ReadmeCommand& row) { return build_root() + "/" + row.key.substr(6); }

}  // namespace

TEST_CASE("every command the README shows is run or listed as skipped, and every listed one is still shown") {
  std::set<std::string> seen;
  for (const auto& c : readme_commands(readme())) {
    seen.insert(c.key);
    CHECK_MESSAGE((kRun.count(c.key) || kSkipped.count(c.key)),
                  "README.md line " << c.line << " shows a command tests/test_readme.cpp neither runs nor skips: " << c.key);
  }
  for (const auto& key : kRun) CHECK_MESSAGE(seen.count(key), "kRun lists what README.md no longer shows: " << key);
  for (const auto& [key, why] : kSkipped) CHECK_MESSAGE(seen.count(key), "kSkipped lists what README.md no longer shows: " << key);
}

TEST_CASE("README: the in-process programs' rows, with real values for their placeholders") {
  const std::string dir = temp_dir();
  std::string out;

  const auto generate = shown("build/daemon/specd generate");
  check_row_options(generate, {row_program(generate)});
  REQUIRE_MESSAGE(sh(bin("daemon/specd") + " generate -m " + stories() + " -p 'Once upon a time' -n 8 --temperature 0 "
                         "--top-k 40 --top-p 0.9 --min-p 0.05 --seed 1 --stop zzz -t 1 --device cpu --json 2>/dev/null", &out) == 0, out);
  const auto report = nlohmann::json::parse(out);
  // The README's list of --json keys ("prints one flat object: `text`, ... each null") is the object's.
  const std::string list = readme().substr(readme().find("prints one flat object:"));
  const std::string keys = list.substr(0, list.find("each null"));
  std::set<std::string> listed;
  static const std::regex code_word("`([a-z_]+)`");
  for (std::sregex_iterator it(keys.begin(), keys.end(), code_word), end; it != end; ++it) listed.insert((*it)[1]);
  for (const auto& [key, value] : report.items()) CHECK_MESSAGE(listed.count(key), "--json prints " << key << ", the README does not list it");
  for (const auto& key : listed) CHECK_MESSAGE(report.contains(key), "the README lists " << key << ", --json does not print it");
  CHECK(report["generated_tokens"] == 8);

  const auto decoder = shown("--decoder");
  check_row_options(decoder, {bin("daemon/specd") + " generate", bin("clients/specctl"), bin("bench/specd-bench")});
  REQUIRE_MESSAGE(sh(bin("daemon/specd") + " generate -m " + stories() + " --prompt-ids 1 -n 16 -t 1 --decoder ngram "
                         "--decoder-opt k=2 --json 2>/dev/null", &out) == 0, out);
  CHECK(nlohmann::json::parse(out)["decoder"] == "ngram");

  const auto decoders = shown("build/daemon/specd decoders");
  check_row_options(decoders, {row_program(decoders)});
  REQUIRE_MESSAGE(sh(bin("daemon/specd") + " decoders --plugin-dir " + bin("plugins") + " --json", &out) == 0, out);
  for (const char* name : {"\"ar\"", "\"ngram\"", "\"redrafter\"", "\"tidar\"", "\"lopa\""}) CHECK_MESSAGE(contains(out, name), out);

  const auto tokenize = shown("build/daemon/specd tokenize");
  check_row_options(tokenize, {row_program(tokenize)});
  REQUIRE(sh(bin("daemon/specd") + " tokenize --model " + stories() + " --text 'Once upon a time' --ids", &out) == 0);
  const auto ids = nlohmann::json::parse(out);
  REQUIRE(ids.is_array());
  CHECK(ids.size() == 5);  // BOS and four words (stories260K adds BOS)
  CHECK(ids[0] == 1);
  write_file(dir + "/text.txt", {'O', 'n', 'c', 'e'});
  REQUIRE(sh(bin("daemon/specd") + " tokenize --model " + stories() + " --file " + dir + "/text.txt --no-bos", &out) == 0);
  CHECK_MESSAGE(std::regex_search(out, std::regex("^[0-9]+\t")), out);  // id<TAB>piece

  const auto perplexity = shown("build/daemon/specd perplexity");
  check_row_options(perplexity, {row_program(perplexity)});
  const std::string story = golden_text();
  write_file(dir + "/story.txt", std::vector<uint8_t>(story.begin(), story.end()));
  REQUIRE_MESSAGE(sh(bin("daemon/specd") + " perplexity --model " + stories() + " --file " + dir + "/story.txt --ctx 64 "
                         "--batch 64 --chunks 1 --threads 1 --device cpu", &out) == 0, out);
  CHECK_MESSAGE(contains(out, "[1]"), out);
  CHECK_MESSAGE(contains(out, "Final estimate: PPL = "), out);
}

TEST_CASE("README: the tools' rows, with real values for their placeholders") {
  const std::string dir = temp_dir();
  std::string out;
  const auto generates = [&](const std::string& model) {
    std::string text;
    CHECK_MESSAGE(sh(bin("daemon/specd") + " generate -m " + model + " --prompt-ids 1 -n 4 -t 1 --json 2>/dev/null", &text) == 0, text);
  };

  const auto convert = shown("build/tools/specd-convert");
  check_row_options(convert, {row_program(convert)});
  REQUIRE_MESSAGE(sh(row_program(convert) + " --model " + model_path("stories260K.bin") + " --tokenizer " +
                         model_path("tok512.bin") + " --out " + dir + "/c.gguf --type f32", &out) == 0, out);
  generates(dir + "/c.gguf");

  const auto quantize = shown("build/tools/specd-quantize");
  check_row_options(quantize, {row_program(quantize)});
  REQUIRE_MESSAGE(sh(row_program(quantize) + " --model " + stories() + " --out " + dir + "/q.gguf --type q8_0", &out) == 0, out);
  generates(dir + "/q.gguf");

  const auto mask = shown("build/tools/specd-add-mask");
  check_row_options(mask, {row_program(mask)});
  REQUIRE_MESSAGE(sh(row_program(mask) + " --model " + stories() + " --out " + dir + "/m.gguf --kind tidar --block-len 4", &out) == 0, out);
  generates(dir + "/m.gguf");

  const auto random = shown("build/tools/specd-random-model");
  check_row_options(random, {row_program(random)});
  REQUIRE_MESSAGE(sh(row_program(random) + " --arch qwen2 --vocab " + shared_dir() + "/data/vocab/ggml-vocab-qwen2.gguf --out " +
                         dir + "/r.gguf --shape small --type f32 --seed 3", &out) == 0, out);
  CHECK(std::filesystem::file_size(dir + "/r.gguf") > 0);

  // Inflating makes a TinyLlama-1.1B-shaped file (gigabytes): its options are checked, it is not run.
  const auto inflate = shown("build/tools/specd-inflate");
  check_row_options(inflate, {row_program(inflate)});

  const auto bench = shown("build/bench/specd-bench");
  check_row_options(bench, {row_program(bench)});
  if (!benchmarks_built()) return;  // said by check_row_options
  REQUIRE_MESSAGE(sh(row_program(bench) + " --model " + stories() + " --threads 1 --what prefill --prefill 16 --runs 1 "
                         "--plugin-dir " + bin("plugins") + " 2>/dev/null", &out) == 0, out);
  CHECK_MESSAGE(nlohmann::json::parse(out.substr(0, out.find('\n'))).is_object(), out);  // one JSON line each
  // A grid value auto leaves the option to the decoder's auto, and the record says so.
  REQUIRE_MESSAGE(sh(row_program(bench) + " --model " + stories() + " --threads 1 --what decode --decoder ngram --grid k=auto,2 "
                         "--tokens 8 --prompts 1 --runs 1 --plugin-dir " + bin("plugins") + " 2>/dev/null", &out) == 0, out);
  std::vector<std::string> ks;
  for (size_t at = 0; at < out.size();) {
    const size_t end = out.find('\n', at);
    const auto j = nlohmann::json::parse(out.substr(at, end - at));
    if (j.value("decoder", "") == "ngram") ks.push_back(j["options"].value("k", ""));
    at = end == std::string::npos ? out.size() : end + 1;
  }
  CHECK(ks == std::vector<std::string>{"auto", "2"});
}

TEST_CASE("README: the daemon's rows and code blocks, against a daemon on a temporary socket and port") {
  const auto serve = shown("build/daemon/specd serve");
  check_row_options(serve, {row_program(serve)});
  std::string out;
  REQUIRE(sh(bin("daemon/specd") + " serve --print-config --model stories260K=" + stories(), &out) == 0);
  CHECK_MESSAGE(contains(out, "[models]"), out);
  CHECK_MESSAGE(contains(out, "stories260K"), out);

  // The default model named as scripts/run.sh names it, which the examples' output and requests show.
  const int port = free_port();
  DaemonProcess d({"--model", "stories260K=" + stories(), "--default-model", "stories260K", "--http",
                   "127.0.0.1:" + std::to_string(port)});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const auto here = [&](const ReadmeCommand& c) { return as_here(c.text, d.socket(), port); };

  const auto specctl = shown("build/clients/specctl");
  check_row_options(specctl, {row_program(specctl)});
  for (const char* command : {"generate", "chat", "status", "runs", "decoders", "models"}) CHECK(contains(specctl.text, command));
  REQUIRE_MESSAGE(sh(bin("clients/specctl") + " --socket " + d.socket() + " --json status", &out) == 0, out);
  CHECK(nlohmann::json::parse(out).is_object());

  const auto models = shown("build/clients/specctl models");
  check_row_options(models, {row_program(models)});
  REQUIRE_MESSAGE(sh(bin("clients/specctl") + " --socket " + d.socket() + " models", &out) == 0, out);
  for (const char* fact : {"llama", "stories260K", "parameters", "F32 100%", "context 2048"}) CHECK_MESSAGE(contains(out, fact), out);

  const auto generate = shown("specctl generate --prompt \"Once upon a time\"");
  REQUIRE_MESSAGE(sh(here(generate), &out) == 0, out);
  CHECK_MESSAGE(contains(out, "Lily"), out);  // the golden story

  const auto chat_row = shown("build/clients/specctl chat");
  check_row_options(chat_row, {row_program(chat_row)});
  const auto chat = shown("echo 'Once upon a time' | build/clients/specctl chat --max-tokens 20");
  REQUIRE(chat.output.size() == 3);
  std::string answer;
  REQUIRE_MESSAGE(sh(here(chat) + " 2>" + d.dir() + "/chat.err", &answer) == 0, answer);
  const std::string err = read_text(d.dir() + "/chat.err");
  CHECK(answer == chat.output[1] + "\n");  // greedy: the README's very words
  CHECK_MESSAGE(err.rfind(chat.output[0] + "\n", 0) == 0, err);
  // The figures vary from run to run; their shape does not.
  const std::regex figures(R"(\[20 tokens, [0-9.]+ tok/s, TPF 1\.00, prompt 5 tokens, length\])");
  CHECK_MESSAGE(std::regex_match(chat.output[2], figures), chat.output[2]);
  CHECK_MESSAGE(std::regex_search(err, figures), err);

  const auto completions = shown("curl -s http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \\");
  REQUIRE_MESSAGE(sh(here(completions), &out) == 0, out);
  const auto completion = nlohmann::json::parse(out);
  CHECK(completion["object"] == "text_completion");
  CHECK(completion["usage"]["completion_tokens"] == 32);

  const auto chat_stream = shown("curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\");
  REQUIRE_MESSAGE(sh(here(chat_stream), &out) == 0, out);
  CHECK_MESSAGE(contains(out, "data: {"), out);
  CHECK_MESSAGE(contains(out, "\"chat.completion.chunk\""), out);
  CHECK_MESSAGE(out.ends_with("data: [DONE]\n\n"), out);

  const auto metrics = shown("curl -s http://127.0.0.1:8080/metrics");
  REQUIRE_MESSAGE(sh(here(metrics), &out) == 0, out);
  for (const char* name : {"specd_requests_total", "specd_requests_running", "specd_requests_waiting", "specd_kv_cache_usage_ratio",
                           "specd_http_connections", "specd_decoder_forwards_total"})
    CHECK_MESSAGE(contains(out, name), name);
}
