// OpenAI response bodies, built with nlohmann::json so every string is escaped by the library.
#include "daemon/openai_response.h"

#include <specd/decoder.h>

#include <nlohmann/json.hpp>

namespace specd::daemon {
namespace {

using json = nlohmann::json;

bool chat(const OpenAiReply& r) { return r.endpoint == OpenAiEndpoint::ChatCompletions; }

json head(const OpenAiReply& r, const char* object) {
  return json{{"id", r.id}, {"object", object}, {"created", r.created}, {"model", r.model}};
}

json usage_json(const OpenAiUsage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"specd", {{"run_id", u.run_id}, {"decoder", u.decoder}, {"forwards", u.forwards},
                         {"tokens_per_forward", u.tokens_per_forward}}}};
}

json null_or(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// Generated text may end inside a UTF-8 character only at a cut the caller made; replace keeps a
// stray byte from making dump() throw.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

const char* openai_finish_reason(int32_t specd_finish) {
  switch (specd_finish) {
    case SPECD_FINISH_LENGTH:
    case SPECD_FINISH_CONTEXT: return "length";
    default: return "stop";
  }
}

OpenAiError openai_error_of(const Error& e) {
  OpenAiError o;
  o.message = e.message.empty() ? error_string(e.code) : e.message;
  o.code = error_name(e.code);
  switch (e.code) {
    case SPECD_E_UNKNOWN_MODEL: o.http_status = 404; o.code = "model_not_found"; o.param = "model"; break;
    case SPECD_E_UNKNOWN_DECODER: o.param = "specd.decoder"; break;
    case SPECD_E_BAD_OPTION: o.param = "specd.options"; break;
    case SPECD_E_CONTEXT:
    case SPECD_E_KV_FULL: o.code = "context_length_exceeded"; break;
    case SPECD_E_INVALID_ARG:
    case SPECD_E_BAD_TOKEN:
    case SPECD_E_UNSUPPORTED: break;
    case SPECD_E_ACCESS: o.http_status = 403; o.type = "permission_error"; break;
    case SPECD_E_LIMIT: o.http_status = 429; o.type = "rate_limit_error"; break;
    case SPECD_E_CANCELED: o.http_status = 503; o.type = "server_error"; break;
    default: o.http_status = 500; o.type = "server_error"; break;
  }
  return o;
}

std::string completion_body(const OpenAiReply& r, std::string_view text, const char* finish_reason, const OpenAiUsage& usage) {
  json j = head(r, chat(r) ? "chat.completion" : "text_completion");
  json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (chat(r)) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string stream_chunk(const OpenAiReply& r, std::string_view text, const char* finish_reason, bool role_delta) {
  json j = head(r, chat(r) ? "chat.completion.chunk" : "text_completion");
  json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  if (chat(r)) {
    json delta = json::object();
    if (role_delta) delta["role"] = "assistant";
    if (!text.empty() || role_delta) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  return sse(j);
}

std::string stream_usage_chunk(const OpenAiReply& r, const OpenAiUsage& usage) {
  json j = head(r, chat(r) ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return sse(j);
}

std::string stream_error(const OpenAiError& e) { return "data: " + error_body(e) + "\n\n"; }

std::string_view stream_done() { return "data: [DONE]\n\n"; }

json openai_model(const ModelInfo& m) {
  json types = json::array();
  for (const auto& t : m.summary.types) types.push_back({{"type", t.type}, {"parameters", t.parameters}, {"bytes", t.bytes}});
  const json facts{{"architecture", m.summary.architecture}, {"parameters", m.summary.parameters}, {"weight_types", types},
                   {"ctx_len", m.ctx_len}, {"vocab", m.vocab}, {"file_bytes", m.summary.file_bytes},
                   {"weight_bytes", m.weight_bytes}, {"device", m.device}, {"device_memory_used", m.device_memory_used},
                   {"device_memory_total", m.device_memory_total},
                   {"chat_template", m.chat_template}, {"default", m.is_default}, {"kv_blocks_total", m.kv_blocks_total},
                   {"kv_blocks_free", m.kv_blocks_free}, {"kv_blocks_reserved", m.kv_blocks_reserved}};
  // created: when the model was made is unknown (OpenAI's is a Unix time; 0 says "not known").
  return json{{"id", m.name}, {"object", "model"}, {"created", 0}, {"owned_by", "specd"}, {"specd", facts}};
}

std::string error_body(const OpenAiError& e) {
  return dump(json{{"error", {{"message", e.message}, {"type", e.type}, {"param", null_or(e.param)}, {"code", null_or(e.code)}}}});
}

}  // namespace specd::daemon
