// libFuzzer target for the HTTP API's request path after h2o has parsed the HTTP: a body for either
// endpoint → OpenAiRequest (or a named 400), and what the daemon would answer with it. Never a
// crash, a hang or an exception; every body the daemon would send is valid JSON.
#include "daemon/openai_request.h"
#include "daemon/openai_response.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

using namespace specd::daemon;

void check_json(const std::string& s) {
  if (!nlohmann::json::accept(s)) std::abort();
}

}  // namespace

// The first byte picks the endpoint; the rest is the body.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto endpoint = data[0] & 1 ? OpenAiEndpoint::ChatCompletions : OpenAiEndpoint::Completions;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  OpenAiRequest q;
  OpenAiError e;
  if (!parse_openai_request(endpoint, body, 4096, &q, &e)) {
    if (e.http_status != 400 || e.message.empty()) std::abort();
    check_json(error_body(e));
    check_json(stream_error(e).substr(6));
    return 0;
  }
  if (endpoint == OpenAiEndpoint::ChatCompletions && (!q.messages.is_array() || q.messages.empty())) std::abort();
  if (endpoint == OpenAiEndpoint::Completions && q.prompt.empty() && q.prompt_ids.empty()) std::abort();
  if (q.max_tokens < 0 || q.max_tokens > 4096 || !(q.temperature >= 0.0f && q.temperature <= 2.0f) || !(q.top_p > 0.0f && q.top_p <= 1.0f))
    std::abort();
  if (!nlohmann::json::accept(q.options_json)) std::abort();
  // Answer with the request's own bytes as the generated text: any bytes must still make JSON.
  const OpenAiReply reply{endpoint, "cmpl-1", 0, q.model};
  const OpenAiUsage usage{1, 2, 3, q.decoder, 4, 0.5};
  check_json(completion_body(reply, body, "stop", usage));
  check_json(stream_chunk(reply, body, nullptr, true).substr(6));
  check_json(stream_usage_chunk(reply, usage).substr(6));
  return 0;
}
