// Every program on the one command-line convention, end to end (issue 16): named unknown options,
// -h/--version, stdin prompts, stop strings stripped the same way in process, through the socket
// and through the HTTP API, errors as JSON, SPECD_ISA refused.
#include "tests/daemon_harness.h"
#include "tests/http_client.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace specd;
using namespace specd::test;

namespace {

std::string specd_exe() { return build_root() + "/daemon/specd"; }
std::string specctl() { return build_root() + "/clients/specctl"; }
std::string stories() { return model_path("stories260K.gguf"); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs cmd; returns its exit status and sets *out to what it printed (2>&1 where cmd says so).
int run(const std::string& cmd, std::string* out) {
  out->clear();
  return run_command(cmd, out);
}

nlohmann::json generate_json(const std::string& extra) {
  std::string out;
  REQUIRE_MESSAGE(run(specd_exe() + " generate -m " + stories() + " --prompt-ids 1 -n 200 -t 1 --json " + extra, &out) == 0, out);
  return nlohmann::json::parse(out);
}

}  // namespace

TEST_CASE("every program: -h and --version answer on stdout with 0; an unknown option is named with 2") {
  const std::vector<std::string> programs = {
      specd_exe() + " generate", specd_exe() + " serve", specd_exe() + " tokenize", specd_exe() + " perplexity",
      specctl(), build_root() + "/tools/specd-convert", build_root() + "/tools/specd-quantize"};
  for (const std::string& p : programs) {
    CAPTURE(p);
    std::string out;
    CHECK(run(p + " -h 2>/dev/null", &out) == 0);
    CHECK(contains(out, "usage:"));
    CHECK(run(p + " --version 2>/dev/null", &out) == 0);
    CHECK(contains(out, SPECD_VERSION_TEXT));
    CHECK(run(p + " --verbose 2>&1", &out) == 2);
    CHECK_MESSAGE(contains(out, "unknown option --verbose"), out);
  }
}

TEST_CASE("specctl: the argument after an unknown option is not swallowed") {
  std::string out;
  CHECK(run(specctl() + " generate --stream --max-tokens 5 2>&1", &out) == 2);
  CHECK_MESSAGE(out.rfind("specctl: unknown option --stream\nusage: specctl", 0) == 0, out);
  CHECK(run(specctl() + " status --prompt x 2>&1", &out) == 2);
  CHECK_MESSAGE(contains(out, "option --prompt is not an option of 'status'"), out);
  CHECK(run(specctl() + " --json generate --stream 2>/dev/null", &out) == 2);
  const auto j = nlohmann::json::parse(out);  // --json: a bad command line is a JSON error too
  CHECK(j["error"] == "INVALID_ARG");
  CHECK(j["message"] == "unknown option --stream");
  CHECK(run(specctl() + " --json generate --prompt x --prompt-ids 1 2>/dev/null", &out) == 2);
  CHECK(nlohmann::json::parse(out)["message"] == "--prompt and --prompt-ids cannot be used together: give one");
  CHECK(run(specctl() + " --json --socket /nonexistent/s.sock status 2>/dev/null", &out) == 3);
  CHECK(nlohmann::json::parse(out)["error"] == "IO");
}

TEST_CASE("specctl chat reads generate's options (short forms, ranges) but no prompt, before connecting") {
  std::string out;
  CHECK(run(specctl() + " --socket /nonexistent/s.sock chat -p x 2>&1", &out) == 2);
  CHECK_MESSAGE(contains(out, "option --prompt is not an option of 'chat'"), out);
  CHECK(run(specctl() + " --json --socket /nonexistent/s.sock chat -n 0 2>/dev/null", &out) == 2);
  CHECK_MESSAGE(contains(nlohmann::json::parse(out)["message"].get<std::string>(), "--max-tokens"), out);
  CHECK(run(specctl() + " --json --socket /nonexistent/s.sock chat --decoder-opt k 2>/dev/null", &out) == 2);
  CHECK(nlohmann::json::parse(out)["error"] == "BAD_OPTION");
  CHECK(run(specctl() + " --socket /nonexistent/s.sock status --system x 2>&1", &out) == 2);
  CHECK_MESSAGE(contains(out, "option --system is not an option of 'status'"), out);
  // Good options get as far as the socket.
  CHECK(run(specctl() + " --json --socket /nonexistent/s.sock chat -m q -n 4 --keep-stop --system hi 2>/dev/null "
                        "</dev/null", &out) == 3);
}

TEST_CASE("specd serve: an unknown option is named before any config file is read; --max-tokens-limit") {
  std::string out;
  CHECK(run(specd_exe() + " serve --verbose 2>&1", &out) == 2);
  CHECK_MESSAGE(out.rfind("specd serve: unknown option --verbose\n", 0) == 0, out);
  CHECK(run(specd_exe() + " serve -h", &out) == 0);
  CHECK(contains(out, "--max-tokens-limit N"));
  CHECK(run(specd_exe() + " serve --model s=" + stories() + " --max-tokens-limit 0 2>&1", &out) == 2);
  CHECK_MESSAGE(contains(out, "--max-tokens-limit must be an integer in [1, 16777216]"), out);
}

TEST_CASE("SPECD_ISA: a bad name or a path this CPU lacks is refused, naming what is valid") {
  std::string out;
  CHECK(run("SPECD_ISA=bogus " + specd_exe() + " generate -m " + stories() + " --prompt-ids 1 -n 1 2>&1", &out) == 2);
  CHECK_MESSAGE(contains(out, "SPECD_ISA=bogus is not one of scalar|avx2|avx512|avx512bf16|amx"), out);
  CHECK(run("SPECD_ISA=scalar " + specd_exe() + " generate -m " + stories() + " --prompt-ids 1 -n 1 --json 2>/dev/null", &out) == 0);
  CHECK(nlohmann::json::parse(out)["isa"] == "scalar");
  // amx is missing from most machines; where it is present the run succeeds instead.
  const int rc = run("SPECD_ISA=amx " + specd_exe() + " generate -m " + stories() + " --prompt-ids 1 -n 1 --json 2>&1", &out);
  if (rc != 0) {
    CHECK(rc == 1);
    CHECK_MESSAGE(contains(out, "SPECD_ISA=amx is not supported by this CPU or not permitted by its kernel (supported here: "), out);
  }
}

TEST_CASE("--prompt - reads stdin in specd generate and specctl alike") {
  std::string a, b;
  REQUIRE(run("printf 'Once upon a time\\n' | " + specd_exe() + " generate -m " + stories() + " -p - -n 8 --json", &a) == 0);
  REQUIRE(run(specd_exe() + " generate -m " + stories() + " -p 'Once upon a time' -n 8 --json", &b) == 0);
  CHECK(nlohmann::json::parse(a)["token_ids"] == nlohmann::json::parse(b)["token_ids"]);
  CHECK(nlohmann::json::parse(a)["prompt_tokens"] == 5);
}

TEST_CASE("stop strings are stripped in process, through the socket and through the HTTP API; --keep-stop keeps them") {
  const auto full = generate_json("");
  const std::string text = full["text"];
  const size_t at = text.find("Lily");
  REQUIRE_MESSAGE(at != std::string::npos, text);  // the golden story names her
  const auto stripped = generate_json("--stop Lily");
  CHECK(stripped["text"] == text.substr(0, at));
  CHECK(stripped["finish_reason"] == "stop");
  const auto kept = generate_json("--stop Lily --keep-stop");
  CHECK(kept["text"] == text.substr(0, at + 4));
  CHECK(kept["token_ids"] == stripped["token_ids"]);  // the stop's tokens are generated either way

  const int port = free_port();
  DaemonProcess d({"--http", "127.0.0.1:" + std::to_string(port)});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  const std::string base = specctl() + " --socket " + d.socket() + " generate --prompt-ids 1 -n 200 ";
  std::string out;
  REQUIRE(run(base + "--stop Lily --json", &out) == 0);
  auto via_socket = nlohmann::json::parse(out);
  CHECK(via_socket["text"] == stripped["text"]);
  CHECK(via_socket["token_ids"] == stripped["token_ids"]);
  for (const auto& [key, value] : stripped.items()) CHECK_MESSAGE(via_socket.contains(key), key);  // one schema
  REQUIRE(run(base + "--stop Lily --keep-stop --json", &out) == 0);
  CHECK(nlohmann::json::parse(out)["text"] == kept["text"]);
  REQUIRE(run(base + "--stop Lily 2>/dev/null", &out) == 0);  // streamed: nothing of the stop string leaks
  CHECK(out == text.substr(0, at) + "\n");

  for (const bool stream : {false, true}) {
    CAPTURE(stream);
    const std::string body = std::string(R"({"prompt": [1], "max_tokens": 200, "temperature": 0, "stop": ["Lily"], "stream": )") +
                             (stream ? "true" : "false") + "}";
    const auto r = http_request(port, "/v1/completions", body, 30000);
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK_MESSAGE(!contains(r.body, "Lily"), r.body);
  }
}

TEST_CASE("the same error gives the same text and exit status in process and through the daemon") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::string a, b;
  const int in_process = run(specd_exe() + " generate -m " + stories() + " --prompt-ids 1 --decoder nope --json 2>/dev/null", &a);
  const int via_daemon = run(specctl() + " --socket " + d.socket() + " generate --prompt-ids 1 --decoder nope --json", &b);
  CHECK(in_process == 2);
  CHECK(via_daemon == 2);
  CHECK(nlohmann::json::parse(a) == nlohmann::json::parse(b));
  REQUIRE(run("printf 'Once upon a time\\n' | " + specctl() + " --socket " + d.socket() + " generate -p - -n 8 --json", &a) == 0);
  REQUIRE(run(specd_exe() + " generate -m " + stories() + " -p 'Once upon a time' -n 8 --json 2>/dev/null", &b) == 0);
  CHECK(nlohmann::json::parse(a)["token_ids"] == nlohmann::json::parse(b)["token_ids"]);  // stdin through the daemon too
  REQUIRE(run(specctl() + " --socket " + d.socket() + " generate --prompt-ids 1 -n 3 --decoder-opt k=4 --decoder ngram", &a) == 0);
  REQUIRE(run(specctl() + " --socket " + d.socket() + " runs --json", &b) == 0);
  const auto runs = nlohmann::json::parse(b)["runs"];
  REQUIRE(runs.size() >= 1);
  CHECK(runs[0]["decoder_options"] == nlohmann::json{{"k", "4"}});  // JSON values, not JSON in a string
  CHECK(runs[0]["accepted_hist"].is_array());
}

TEST_CASE("specd generate --json and specctl --json generate answer each bad input with the same error object and status") {
  DaemonProcess d;
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  std::string long_prompt = "1";  // more tokens than stories260K's context of 2048
  for (int i = 0; i < 2100; ++i) long_prompt.append(",1");
  struct Case {
    std::string args, name;
    int status;
  };
  const std::vector<Case> cases = {
      {"--prompt-ids 1 --verbose", "INVALID_ARG", 2},                      // an unknown option
      {"--prompt-ids 1 extra", "INVALID_ARG", 2},                          // a stray argument
      {"--prompt-ids 1 --temperature -1", "INVALID_ARG", 2},               // a value out of range
      {"--prompt-ids 1 --decoder nope", "UNKNOWN_DECODER", 2},
      {"--prompt-ids 1 --decoder ngram --decoder-opt k=999", "BAD_OPTION", 2},
      {"--prompt-ids 1 --decoder-opt k", "BAD_OPTION", 2},
      {"--prompt-ids 99999", "BAD_TOKEN", 2},
      {"--prompt-ids " + long_prompt + " -n 4", "CONTEXT", 1},             // a prompt too long
  };
  for (const Case& c : cases) {
    CAPTURE(c.args.substr(0, 60));
    std::string a, b;
    const int in_process = run(specd_exe() + " generate -m " + stories() + " --json " + c.args + " 2>/dev/null", &a);
    const int via_daemon = run(specctl() + " --socket " + d.socket() + " --json generate " + c.args + " 2>/dev/null", &b);
    CHECK(in_process == c.status);
    CHECK(via_daemon == c.status);
    const auto ja = nlohmann::json::parse(a);  // stdout holds the JSON object and nothing else
    const auto jb = nlohmann::json::parse(b);
    CHECK(ja["error"] == c.name);
    CHECK(ja["code"] == jb["code"]);
    CHECK(ja["error"] == jb["error"]);
    // The context's message names the KV cache's size, which differs between the two.
    if (c.name != "CONTEXT") CHECK(ja["message"] == jb["message"]);
  }
  // What only one side has: a model file that cannot be loaded, a kernel path that cannot be had.
  std::string out;
  CHECK(run(specd_exe() + " generate -m /nonexistent/m.gguf --prompt-ids 1 --json 2>/dev/null", &out) == 1);
  CHECK(nlohmann::json::parse(out)["error"] == "IO");
  CHECK(run(specctl() + " --socket " + d.socket() + " --json generate -m nope --prompt-ids 1 2>/dev/null", &out) == 2);
  CHECK(nlohmann::json::parse(out)["error"] == "UNKNOWN_MODEL");
  CHECK(run("SPECD_ISA=bogus " + specd_exe() + " generate -m " + stories() + " --prompt-ids 1 --json 2>/dev/null", &out) == 2);
  CHECK(nlohmann::json::parse(out)["error"] == "INVALID_ARG");
  CHECK(run(specd_exe() + " generate --prompt-ids 1 --json 2>/dev/null", &out) == 2);  // no --model
  CHECK(contains(nlohmann::json::parse(out)["message"].get<std::string>(), "--model PATH is required"));
  CHECK(run(specd_exe() + " decoders --json --bad 2>/dev/null", &out) == 2);  // the other program with --json
  CHECK(nlohmann::json::parse(out)["message"] == "unknown option --bad");
}
