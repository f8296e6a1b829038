// GenerationOptions: the generate options of specd and specctl, read from one CliArgs with one set of ranges.
#include "cli/generation_options.h"

#include <nlohmann/json.hpp>

namespace specd::cli {
namespace {

// Every prompt a file could hold; a larger stdin is refused rather than read without bound.
constexpr size_t kMaxStdinPrompt = size_t{64} << 20;

Result<std::string> read_all(std::FILE* f) {
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxStdinPrompt)
      return make_error(SPECD_E_INVALID_ARG, "--prompt -: stdin holds more than %zu MiB", kMaxStdinPrompt >> 20);
  }
  if (std::ferror(f)) return make_error(SPECD_E_IO, "--prompt -: cannot read stdin");
  return text;
}

Status read_prompt(const CliArgs& a, std::FILE* in, GenerationOptions& o) {
  if (a.has("prompt") && a.has("prompt-ids"))
    return make_error(SPECD_E_INVALID_ARG, "--prompt and --prompt-ids cannot be used together: give one");
  if (!a.has("prompt") && !a.has("prompt-ids"))
    return make_error(SPECD_E_INVALID_ARG, "no prompt: give --prompt TEXT, --prompt - (stdin) or --prompt-ids IDS");
  if (a.has("prompt-ids")) {
    auto ids = CliArgs::id_list(a.str("prompt-ids"));
    if (!ids) return ids.error();
    o.has_prompt_ids = true;
    o.prompt_ids = std::move(ids.value());
    return {};
  }
  if (a.str("prompt") != "-") {
    o.prompt_text = a.str("prompt");
    return {};
  }
  auto text = read_all(in);
  if (!text) return text.error();
  // A file or a heredoc ends in a newline that is not part of the prompt (as llama.cpp's --file).
  if (!text->empty() && text->back() == '\n') text->pop_back();
  o.prompt_text = std::move(text.value());
  return {};
}

}  // namespace

const std::set<std::string>& generation_option_names() {
  static const std::set<std::string> names = {"prompt", "prompt-ids", "max-tokens", "temperature", "top-k", "top-p",
                                              "min-p", "seed", "stop", "decoder", "decoder-opt"};
  return names;
}

const std::set<std::string>& generation_flag_names() {
  static const std::set<std::string> names = {"keep-stop"};
  return names;
}

Result<GenerationOptions> read_generation_options(const CliArgs& a, std::FILE* stdin_file) {
  GenerationOptions prompt;
  SPECD_TRY(read_prompt(a, stdin_file, prompt));  // the prompt's errors first, as before any range
  auto o = read_generation_settings(a);
  if (!o) return o.error();
  o->has_prompt_ids = prompt.has_prompt_ids;
  o->prompt_text = std::move(prompt.prompt_text);
  o->prompt_ids = std::move(prompt.prompt_ids);
  return o;
}

Result<GenerationOptions> read_generation_settings(const CliArgs& a) {
  GenerationOptions o;
  // The ranges are the daemon's (daemon/generate_checks.cpp) so an option is refused the same way
  // before it is sent as after; [limits] max_tokens may still be lower than 2^24.
  auto max_tokens = a.integer("max-tokens", o.max_tokens, 1, 1 << 24);
  auto temperature = a.number("temperature", 0.0, 0.0, 100.0);
  auto top_k = a.integer("top-k", 0, 0, 1 << 24);
  auto top_p = a.number("top-p", 1.0, 0.0, 1.0);
  auto min_p = a.number("min-p", 0.0, 0.0, 1.0);
  auto seed = a.integer("seed", 0, 0, INT64_MAX);
  auto options = decoder_options_json(a.all("decoder-opt"));
  for (const Error* e : {max_tokens ? nullptr : &max_tokens.error(), temperature ? nullptr : &temperature.error(),
                         top_k ? nullptr : &top_k.error(), top_p ? nullptr : &top_p.error(),
                         min_p ? nullptr : &min_p.error(), seed ? nullptr : &seed.error(),
                         options ? nullptr : &options.error()})
    if (e) return *e;
  o.max_tokens = static_cast<int32_t>(*max_tokens);
  o.temperature = static_cast<float>(*temperature);
  o.top_k = static_cast<int32_t>(*top_k);
  o.top_p = static_cast<float>(*top_p);
  o.min_p = static_cast<float>(*min_p);
  o.seed = static_cast<uint64_t>(*seed);
  o.stop = a.all("stop");
  for (const std::string& s : o.stop)
    if (s.empty()) return make_error(SPECD_E_INVALID_ARG, "--stop wants a non-empty text");
  o.keep_stop = a.has("keep-stop");
  o.decoder = a.str("decoder");
  o.decoder_options_json = std::move(options.value());
  return o;
}

Result<std::string> decoder_options_json(const std::vector<std::string>& items) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error(SPECD_E_BAD_OPTION, "decoder option '%s' is not KEY=VALUE", item.c_str());
    const std::string key = item.substr(0, eq);
    if (j.contains(key)) return make_error(SPECD_E_BAD_OPTION, "decoder option '%s' given twice", key.c_str());
    j[key] = item.substr(eq + 1);
  }
  return j.dump();
}

}  // namespace specd::cli
