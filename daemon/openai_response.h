// OpenAI response bodies: completion and chat-completion objects, their Server-Sent-Events chunks,
// the model object, and the error object, with specd's codes mapped onto OpenAI's statuses and finish reasons.
#pragma once

#include "daemon/openai_request.h"
#include "daemon/wire_encode.h"
#include "kernels/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace specd::daemon {

// What every body of one request repeats.
struct OpenAiReply {
  OpenAiEndpoint endpoint = OpenAiEndpoint::Completions;
  std::string id;       // "cmpl-<run id>" or "chatcmpl-<run id>"
  int64_t created = 0;  // unix seconds
  std::string model;    // the configured model name that ran it
};

// usage, with specd's own figures under usage.specd: the run-log id and the decoder's tokens per forward.
struct OpenAiUsage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int64_t run_id = 0;
  std::string decoder;
  int32_t forwards = 0;
  double tokens_per_forward = 0.0;
};

// OpenAI's finish_reason for a SPECD_FINISH_* reason: "length" (max tokens, full context) or "stop"
// (a stop token or string, the decoder's own end, a cancel). No errors.
const char* openai_finish_reason(int32_t specd_finish);

// The HTTP status, type and code OpenAI's API would use for error e (400 for bad requests, 404 for
// an unknown model, 429 when the queue is full, 503 while draining, 500 otherwise). No errors.
OpenAiError openai_error_of(const Error& e);

// The whole non-streamed body: a text_completion or chat.completion object. No errors.
std::string completion_body(const OpenAiReply& reply, std::string_view text, const char* finish_reason, const OpenAiUsage& usage);

// One SSE event ("data: {...}\n\n") carrying text; finish_reason NULL while the stream runs. A chat
// stream's first chunk (role_delta) also carries {"role": "assistant"}. No errors.
std::string stream_chunk(const OpenAiReply& reply, std::string_view text, const char* finish_reason, bool role_delta);
// The usage event sent before [DONE] when stream_options.include_usage is set (choices is empty).
std::string stream_usage_chunk(const OpenAiReply& reply, const OpenAiUsage& usage);
// An error inside an already started stream, as OpenAI sends it: data: {"error": {...}}.
std::string stream_error(const OpenAiError& e);
// The last event of every stream.
std::string_view stream_done();

// A model object of GET /v1/models: OpenAI's fields exactly (id, object "model", created, owned_by)
// and, under "specd", what `specctl models --json` shows of it, by the same names (its path left
// out: an HTTP client need not learn the server's file layout). No errors.
nlohmann::json openai_model(const ModelInfo& m);

// {"error": {"message", "type", "param", "code"}} with null for an empty param or code. No errors.
std::string error_body(const OpenAiError& e);

}  // namespace specd::daemon
