// Chat templates: a model's tokenizer.chat_template (Jinja) rendered for OpenAI-style messages
// the way Hugging Face's apply_chat_template renders it (jinja2's ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and loopcontrols; globals raise_exception and strftime_now; HF's tojson).
// The supported Jinja subset and the error messages are described in chat/README.md.
//
// Thread rule: a ChatTemplate is immutable after parse(); render() may run on several threads at once.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kernels/result.h"

namespace specd::chat {

namespace jinja {
struct Program;
}

class ChatTemplate {
 public:
  // Parses Jinja source (copied; the source need not outlive the call). Errors: SPECD_E_UNSUPPORTED
  // for syntax errors and constructs outside the subset, with the line ("chat template line 12:
  // unsupported filter 'xyz'"); SPECD_E_LIMIT when blocks or expressions nest more than 100 deep.
  static Result<ChatTemplate> parse(std::string_view source);

  // Renders with `context`'s keys as the global variables (e.g. {"messages": [...],
  // "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "tools": [...]}); JSON
  // objects keep nlohmann::json's key order (sorted) where a template iterates or dumps them.
  // Errors: SPECD_E_INVALID_ARG when the template calls raise_exception(msg) (message = msg exactly)
  // or fails for this input as jinja2 would (an undefined value's attribute, a type error: message
  // with the line); SPECD_E_UNSUPPORTED for constructs met only at render time; SPECD_E_LIMIT when
  // the output or a string passes 16 MiB, values nest 256 deep, macros recurse 100 deep or the
  // template runs 5 million statements and loop iterations; SPECD_E_NOMEM when allocation fails. strftime_now uses the
  // local time now.
  Result<std::string> render(const nlohmann::json& context) const;
  // The same with strftime_now formatting `now` (local broken-down time): for tests and replays.
  Result<std::string> render(const nlohmann::json& context, const std::tm& now) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const jinja::Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const jinja::Program> program_;  // shared by copies; never changed after parse
};

// The documented fallback for models without tokenizer.chat_template: ChatML, as llama.cpp
// defaults to. Static storage.
std::string_view default_template_source();

}  // namespace specd::chat
