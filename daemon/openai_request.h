// OpenAI request bodies: a POST /v1/completions or /v1/chat/completions JSON body → what the
// engine runs. Pure (no daemon state), so the HTTP path's fuzz target and the unit tests drive it
// directly.
//
// Accepted: model, prompt (a string, a one-element array of strings, or an array of token ids) or
// messages, max_tokens / max_completion_tokens, temperature [0, 2], top_p (0, 1], seed, stop (a
// string or up to 4), n = 1, stream, stream_options.include_usage, presence_penalty and
// frequency_penalty = 0, logprobs false/null/0, response_format {"type": "text"}, tools and
// tool_choice (handed to the chat template), user; and the extension "specd": {"decoder": NAME,
// "options": {...}} (the official SDKs send it through their extra-body option). Unknown fields are
// ignored, as OpenAI-compatible servers do. Anything else is a named 400 with the parameter in it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace specd::daemon {

enum class OpenAiEndpoint { Completions, ChatCompletions };

struct OpenAiRequest {
  OpenAiEndpoint endpoint = OpenAiEndpoint::Completions;
  std::string model;                  // as sent ("" when absent: the daemon's default model)
  std::string prompt;                 // completions: the prompt text
  std::vector<int32_t> prompt_ids;    // completions: a prompt given as token ids
  nlohmann::json messages;            // chat: the messages array, as sent
  nlohmann::json tools;               // chat: the tools array (null when absent)
  int32_t max_tokens = 0;             // 0: the endpoint's default (decided by the caller)
  float temperature = 1.0f;           // OpenAI's default
  float top_p = 1.0f;
  uint64_t seed = 0;
  bool has_seed = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  std::string decoder = "ar";         // specd.decoder
  std::string options_json = "{}";    // specd.options, re-serialised
};

// The OpenAI error object of a refusal: {"error": {"message", "type", "param", "code"}}.
struct OpenAiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;                  // "" → null
  std::string code;                   // "" → null
};

// Parse body (which must be a JSON object) for endpoint into *out; max_tokens_limit bounds
// max_tokens and max_completion_tokens. Returns false with *error set (status 400, the parameter
// named in message and param; malformed JSON and duplicate keys included) when the body is refused.
bool parse_openai_request(OpenAiEndpoint endpoint, std::string_view body, int32_t max_tokens_limit, OpenAiRequest* out,
                          OpenAiError* error);

}  // namespace specd::daemon
