// The generation options that `specd generate` and `specctl generate` share: one reading of the
// command line, so both take the same options with the same ranges, defaults and errors.
#pragma once

#include "cli/cli_args.h"
#include "kernels/result.h"

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace specd::cli {

struct GenerationOptions {
  bool has_prompt_ids = false;
  std::string prompt_text;          // --prompt TEXT; "--prompt -" reads it from stdin
  std::vector<int32_t> prompt_ids;  // --prompt-ids 1,403,...
  int32_t max_tokens = 256;         // -n/--max-tokens: the length to generate
  float temperature = 0.0f;         // 0 = greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;    // --stop TEXT, repeatable
  bool keep_stop = false;           // --keep-stop: leave a matched stop string in the text
  std::string decoder;              // --decoder NAME; empty: ar
  std::string decoder_options_json = "{}";
};

// The options above, for a program's option set: value options and flags.
const std::set<std::string>& generation_option_names();
const std::set<std::string>& generation_flag_names();

// Read and check them. stdin is where "--prompt -" reads from. Errors (SPECD_E_INVALID_ARG, or
// SPECD_E_BAD_OPTION for --decoder-opt) name the option: no prompt, --prompt with --prompt-ids,
// a value out of range.
Result<GenerationOptions> read_generation_options(const CliArgs& a, std::FILE* stdin_file);

// Every option above but the prompt (for a command whose prompt comes from elsewhere, as
// `specctl chat`'s conversation): the same ranges, defaults and errors.
Result<GenerationOptions> read_generation_settings(const CliArgs& a);

// ["k=4", "drafter=x.gguf"] → {"k":"4","drafter":"x.gguf"} (values stay strings; decoders parse
// them with opt_int/opt_float). Errors: SPECD_E_BAD_OPTION for an item without '=' or a repeated key.
Result<std::string> decoder_options_json(const std::vector<std::string>& items);

}  // namespace specd::cli
