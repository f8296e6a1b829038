// Chat prompts: OpenAI messages → the text a model was trained on, by rendering its chat template
// (tokenizer.chat_template, Jinja; chat/chat_template.h) with add_generation_prompt, or the
// documented ChatML fallback when the model has none.
#pragma once

#include "engine/model.h"
#include "kernels/result.h"

#include <nlohmann/json.hpp>

#include <string>

namespace specd::daemon {

// The prompt for messages (and tools, null when none) on model, for tokenizing with
// parse_special. A leading BOS the template writes is left out when the tokenizer adds BOS itself,
// so the prompt starts with exactly one. Errors: SPECD_E_UNSUPPORTED when the template uses what the
// renderer lacks (named), SPECD_E_INVALID_ARG when the template refuses the conversation
// (raise_exception, e.g. roles out of order) with its message.
Result<std::string> chat_prompt(const engine::Model& model, const nlohmann::json& messages, const nlohmann::json& tools);

}  // namespace specd::daemon
