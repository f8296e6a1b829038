// One generation as every program reports it: `specd generate` (in process) and `specctl generate`
// (through the daemon) print the same stats line, the same --json object and the same errors.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace specd::cli {

// The figures of one generation. What only one side knows is optional and is null in the JSON:
// run_id through the daemon; prefill_tok_s, decode_ms, threads, device, isa and auto_settings in
// process (through the daemon, what `auto` chose is in the run's row: specctl runs).
struct GenerationReport {
  std::vector<int32_t> token_ids;
  std::string text;                   // stop strings already stripped unless kept (--keep-stop)
  std::string finish_reason;          // "stop", "length", "cancel", ...
  std::string model;
  std::string decoder;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t forwards = 0;
  double tokens_per_forward = 0.0;
  std::vector<int32_t> accepted_hist;  // accepted_hist[n] = decode steps that emitted n tokens
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;
  std::optional<double> prefill_tok_s;
  std::optional<double> decode_ms;
  std::optional<int64_t> run_id;
  std::optional<int64_t> threads;
  std::optional<std::string> device;
  std::optional<std::string> isa;
  std::optional<nlohmann::json> auto_settings;  // steps per setting an `auto` decoder chose ({}: none)
};

// The --json object: flat, every key always present (README "specd generate --json").
nlohmann::json report_json(const GenerationReport& r);

// The line on stderr after streamed text:
// "[stop: 12 prompt tokens, 40 generated, TTFT 3.1 ms, decode 140.2 tok/s, 1.00 tokens/forward, ar]"
// then ", run 7" through the daemon or ", cpu avx2" in process.
std::string stats_line(const GenerationReport& r);

// A failure as --json prints it: {"error": NAME, "code": N, "message": MESSAGE}.
nlohmann::json error_json(int code, const std::string& message);

// JSON text that never throws: a token stream may end inside a UTF-8 character, so invalid bytes
// are replaced rather than refused.
std::string dump_json(const nlohmann::json& j);

}  // namespace specd::cli
