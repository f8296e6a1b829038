// The command-line convention's parts: CliArgs, the shared generate options, stop-string matching,
// the generation report and the exit-status table (issue 16). Programs end to end: test_cli_programs.cpp.
#include "cli/cli_args.h"
#include "cli/command_line.h"
#include "cli/exit_codes.h"
#include "cli/generation_options.h"
#include "cli/generation_report.h"
#include "daemon/stop_strings.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace specd;
using namespace specd::daemon;
using namespace specd::cli;

namespace {

// argv from words; argv[0] is the program.
struct Argv {
  std::vector<std::string> words;
  std::vector<char*> ptrs;
  explicit Argv(std::vector<std::string> w) : words(std::move(w)) {
    words.insert(words.begin(), "prog");
    for (auto& x : words) ptrs.push_back(x.data());
  }
  int argc() { return static_cast<int>(ptrs.size()); }
  char** argv() { return ptrs.data(); }
};

Result<CliArgs> parse(std::vector<std::string> words, bool positional = false) {
  Argv a(std::move(words));
  return CliArgs::parse(a.argc(), a.argv(), {"model", "prompt", "max-tokens", "prompt-ids", "stop"}, {"json", "keep-stop"},
                        positional);
}

std::string error_of(std::vector<std::string> words, bool positional = false) {
  auto r = parse(std::move(words), positional);
  return r ? "" : r.error().message;
}

Result<GenerationOptions> options(std::vector<std::string> words, std::FILE* in = nullptr) {
  auto a = parse(std::move(words));
  REQUIRE(a.has_value());
  return read_generation_options(*a, in);
}

}  // namespace

TEST_CASE("an unknown option is named and never takes the next argument") {
  CHECK(error_of({"--stream", "--max-tokens", "5"}) == "unknown option --stream");
  CHECK(error_of({"--stream=1"}) == "unknown option --stream");
  CHECK(error_of({"-x", "5"}) == "unknown option -x");
  CHECK(error_of({"-t", "4"}) == "unknown option -t");  // no --threads here, so no -t either
  CHECK(error_of({"-mfile"}) == "unknown option -mfile");
  CHECK(error_of({"--json=1"}) == "option --json takes no value");
  CHECK(error_of({"--model"}) == "option --model needs a value");
  CHECK(error_of({"5"}) == "unexpected argument '5'");
}

TEST_CASE("short forms, --help/-h and --version exist everywhere; '--' and '-' are arguments") {
  auto a = parse({"-m", "M.gguf", "-p", "hi", "-n", "7", "-h", "--version"});
  REQUIRE(a.has_value());
  CHECK(a->str("model") == "M.gguf");
  CHECK(a->str("prompt") == "hi");
  CHECK(a->integer("max-tokens", 0, 1, 10).value() == 7);
  CHECK(a->has("help"));
  CHECK(a->has("version"));
  auto b = parse({"generate", "--prompt", "-", "--", "--json", "-"}, true);
  REQUIRE(b.has_value());
  CHECK(b->str("prompt") == "-");
  CHECK(!b->has("json"));
  CHECK(b->positional() == std::vector<std::string>{"generate", "--json", "-"});
  CHECK(std::string(specd_version()).size() > 0);
}

TEST_CASE("generate options: one prompt source, stdin for '-', the daemon's ranges") {
  CHECK(options({}).error().message.find("no prompt") == 0);
  auto both = options({"--prompt", "x", "--prompt-ids", "1"});
  CHECK(both.error().message == "--prompt and --prompt-ids cannot be used together: give one");
  CHECK(options({"--prompt-ids", "1,x"}).error().message.find("bad token id 'x'") == 0);
  auto ids = options({"--prompt-ids", "1,2"});
  REQUIRE(ids.has_value());
  CHECK(ids->has_prompt_ids);
  CHECK(ids->prompt_ids == std::vector<int32_t>{1, 2});
  CHECK(ids->max_tokens == 256);

  std::FILE* in = std::tmpfile();
  REQUIRE(in != nullptr);
  std::fputs("Once upon\na time\n", in);
  std::rewind(in);
  auto from_stdin = options({"--prompt", "-"}, in);
  std::fclose(in);
  REQUIRE(from_stdin.has_value());
  CHECK(from_stdin->prompt_text == "Once upon\na time");  // the last newline is the file's, not the prompt's
  std::FILE* unreadable = std::fopen("/dev/null", "w");
  REQUIRE(unreadable != nullptr);
  const auto failed = options({"--prompt", "-"}, unreadable);
  std::fclose(unreadable);
  CHECK(failed.error().code == SPECD_E_IO);
  CHECK(failed.error().message == "--prompt -: cannot read stdin");

  CHECK(options({"--prompt", "x", "--max-tokens", "0"}).error().message.find("--max-tokens must be an integer in [1, 16777216]") == 0);
  CHECK(options({"--prompt", "x", "--stop", ""}).error().message == "--stop wants a non-empty text");
  auto keep = options({"--prompt", "x", "--stop", "Lily", "--keep-stop"});
  REQUIRE(keep.has_value());
  CHECK(keep->keep_stop);
  CHECK(keep->stop == std::vector<std::string>{"Lily"});
}

TEST_CASE("decoder options: KEY=VALUE once each") {
  CHECK(decoder_options_json({"k=4", "drafter=x.gguf"}).value() == R"({"drafter":"x.gguf","k":"4"})");
  CHECK(decoder_options_json({"novalue"}).error().code == SPECD_E_BAD_OPTION);
  CHECK(decoder_options_json({"k=1", "k=2"}).error().message == "decoder option 'k' given twice");
}

TEST_CASE("stop strings: the earliest match, and the tail that could still become one") {
  const std::vector<std::string> stops = {"Lily", "ily!", "\n\n"};
  CHECK(!find_stop("Once upon", 0, stops).found());
  const StopMatch m = find_stop("Once Lily", 6, stops);  // appended "ily": the match began before
  CHECK(m.at == 5);
  CHECK(m.length == 4);
  CHECK(find_stop("a Lily!", 5, stops).at == 2);  // two matches end in the new part: the first wins
  CHECK(!find_stop("Lily and", 5, stops).found());  // ended before `from`: an earlier call's
  CHECK(stop_safe_length("Once Li", stops) == 5);
  CHECK(stop_safe_length("Once L", stops) == 5);
  CHECK(stop_safe_length("Once\n", stops) == 4);
  CHECK(stop_safe_length("Once", stops) == 4);
  CHECK(stop_safe_length("", stops) == 0);
  CHECK(stop_safe_length("Once Li", {}) == 7);
}

TEST_CASE("the generation report: one JSON schema with every key, one stats line") {
  GenerationReport r;
  r.token_ids = {5, 6};
  r.text = "ab";
  r.finish_reason = "stop";
  r.decoder = "ar";
  r.prompt_tokens = 3;
  r.generated_tokens = 2;
  r.forwards = 2;
  r.tokens_per_forward = 1.0;
  r.ttft_ms = 1.25;
  r.decode_tok_s = 100.0;
  const auto daemon_side = [&] {
    GenerationReport d = r;
    d.run_id = 7;
    return d;
  }();
  auto in_process = r;
  in_process.device = "cpu";
  in_process.isa = "avx2";
  in_process.threads = 2;
  const auto a = report_json(daemon_side), b = report_json(in_process);
  REQUIRE(a.size() == b.size());
  for (const auto& [key, value] : a.items()) CHECK_MESSAGE(b.contains(key), key);
  CHECK(a["run_id"] == 7);
  CHECK(b["run_id"].is_null());
  CHECK(a["device"].is_null());
  CHECK(stats_line(daemon_side) ==
        "[stop: 3 prompt tokens, 2 generated, TTFT 1.2 ms, decode 100.0 tok/s, 1.00 tokens/forward, ar, run 7]");
  CHECK(stats_line(in_process) ==
        "[stop: 3 prompt tokens, 2 generated, TTFT 1.2 ms, decode 100.0 tok/s, 1.00 tokens/forward, ar, cpu avx2]");
  CHECK(error_json(SPECD_E_UNKNOWN_DECODER, "unknown decoder 'x'") ==
        nlohmann::json{{"error", "UNKNOWN_DECODER"}, {"code", SPECD_E_UNKNOWN_DECODER}, {"message", "unknown decoder 'x'"}});
  CHECK(dump_json(nlohmann::json("a\xff")) == "\"a\xef\xbf\xbd\"");
}

TEST_CASE("one exit-status table") {
  CHECK(exit_code_for(SPECD_OK) == kExitOk);
  for (int c : {SPECD_E_INVALID_ARG, SPECD_E_BAD_TOKEN, SPECD_E_UNKNOWN_DECODER, SPECD_E_UNKNOWN_MODEL, SPECD_E_BAD_OPTION})
    CHECK(exit_code_for(c) == kExitUsage);
  CHECK(exit_code_for(SPECD_E_ACCESS) == kExitAccess);
  CHECK(exit_code_for(SPECD_E_ACCESS - (1 << 8)) == kExitAccess);  // an extended code by its primary
  for (int c : std::initializer_list<int>{SPECD_E_LIMIT, SPECD_E_CONTEXT, SPECD_E_KV_FULL, SPECD_E_CANCELED, SPECD_E_DEVICE, SPECD_E_IO, -999})
    CHECK(exit_code_for(c) == kExitFailed);
}
