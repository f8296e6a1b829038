// OpenAI request bodies → OpenAiRequest. Every refusal names the parameter, as OpenAI's own API does
// ("'temperature' must be a number in [0, 2]"), so a client library can show it as is.
#include "daemon/openai_request.h"

#include "daemon/strict_json.h"

#include <cmath>

namespace specd::daemon {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxStops = 4;  // OpenAI's limit

// Carries the first refusal out of the field readers below.
struct Refusal {
  OpenAiError* error;
  bool operator()(const std::string& param, const std::string& message) const {
    error->http_status = 400;
    error->type = "invalid_request_error";
    error->param = param;
    error->code = "";
    error->message = message;
    return false;
  }
};

// range is how people write [lo, hi] or (lo, hi], for the message.
bool read_number(const json& body, const char* key, double lo, double hi, bool lo_open, const char* range, double* out,
                 const Refusal& refuse) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number()) return refuse(key, std::string("'") + key + "' must be a number in " + std::string(range));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v > hi || v < lo || (lo_open && v == lo))
    return refuse(key, std::string("'") + key + "' must be a number in " + std::string(range) + ", got " + it->dump());
  *out = v;
  return true;
}

bool read_bool(const json& body, const char* key, bool* out, const Refusal& refuse) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_boolean()) return refuse(key, std::string("'") + key + "' must be a boolean");
  *out = it->get<bool>();
  return true;
}

// A parameter we accept only at its neutral value: anything else would be silently ignored, which is
// worse than a refusal.
bool read_neutral(const json& body, const char* key, const json& neutral, const Refusal& refuse) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null() || *it == neutral) return true;
  if (std::string(key) == "logprobs" || std::string(key) == "top_logprobs")
    return refuse(key, std::string("'") + key + "' is not supported by specd (its decoders do not return log-probabilities)");
  return refuse(key, std::string("'") + key + "' is not supported by specd; only " + neutral.dump() + " is accepted");
}

bool read_max_tokens(const json& body, int32_t limit, OpenAiRequest* out, const Refusal& refuse) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 1)
      return refuse(key, std::string("'") + key + "' must be a positive integer");
    if (it->get<int64_t>() > limit)
      return refuse(key, std::string("'") + key + "' is " + it->dump() + ", above this daemon's limit of " +
                             std::to_string(limit) + " (limits.max_tokens)");
    out->max_tokens = static_cast<int32_t>(it->get<int64_t>());
    return true;  // max_completion_tokens wins when both are given, as in OpenAI's API
  }
  return true;
}

bool read_stop(const json& body, OpenAiRequest* out, const Refusal& refuse) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return true;
  if (it->is_string()) {
    if (!it->get<std::string>().empty()) out->stop.push_back(it->get<std::string>());
    return true;
  }
  if (!it->is_array() || it->size() > kMaxStops) return refuse("stop", "'stop' must be a string or an array of at most 4 strings");
  for (const json& s : *it) {
    if (!s.is_string()) return refuse("stop", "'stop' must be a string or an array of at most 4 strings");
    if (!s.get<std::string>().empty()) out->stop.push_back(s.get<std::string>());
  }
  return true;
}

bool read_prompt(const json& body, OpenAiRequest* out, const Refusal& refuse) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return refuse("prompt", "'prompt' is required");
  if (it->is_string()) {
    out->prompt = it->get<std::string>();
  } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    out->prompt = (*it)[0].get<std::string>();
  } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    for (const json& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        return refuse("prompt", "'prompt' given as token ids must hold non-negative integers only");
      out->prompt_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  } else if (it->is_array() && it->size() > 1) {
    return refuse("prompt", "'prompt' holds several prompts; specd answers one prompt per request");
  } else {
    return refuse("prompt", "'prompt' must be a string, an array of one string or an array of token ids");
  }
  if (out->prompt.empty() && out->prompt_ids.empty()) return refuse("prompt", "'prompt' is empty");
  return true;
}

// Each message needs a role string; content is a string, null (an assistant turn with tool calls) or
// an array of text parts. The chat template reads the rest (name, tool_calls, tool_call_id) as sent.
bool read_messages(const json& body, OpenAiRequest* out, const Refusal& refuse) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) return refuse("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return refuse(where, "'" + where + "' must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string() || role->get<std::string>().empty())
      return refuse(where + ".role", "'" + where + ".role' must be a non-empty string");
    auto content = m.find("content");
    if (content == m.end() || content->is_null() || content->is_string()) continue;
    if (!content->is_array()) return refuse(where + ".content", "'" + where + ".content' must be a string or an array of text parts");
    for (const json& part : *content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        return refuse(where + ".content", "'" + where + ".content' may only hold {\"type\": \"text\", \"text\": ...} parts (no images or audio)");
    }
  }
  out->messages = *it;
  if (auto t = body.find("tools"); t != body.end() && !t->is_null()) {
    if (!t->is_array()) return refuse("tools", "'tools' must be an array");
    out->tools = *t;
  }
  return true;
}

bool read_extension(const json& body, OpenAiRequest* out, const Refusal& refuse) {
  auto it = body.find("specd");
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_object()) return refuse("specd", "'specd' must be an object such as {\"decoder\": \"ngram\", \"options\": {}}");
  for (const auto& [k, v] : it->items())
    if (k != "decoder" && k != "options") return refuse("specd." + k, "unknown field 'specd." + k + "' (known: decoder, options)");
  if (auto d = it->find("decoder"); d != it->end() && !d->is_null()) {
    if (!d->is_string() || d->get<std::string>().empty()) return refuse("specd.decoder", "'specd.decoder' must be a decoder name");
    out->decoder = d->get<std::string>();
  }
  if (auto o = it->find("options"); o != it->end() && !o->is_null()) {
    if (!o->is_object()) return refuse("specd.options", "'specd.options' must be an object of decoder options");
    out->options_json = o->dump();
  }
  return true;
}

bool read_sampling(const json& body, OpenAiRequest* out, const Refusal& refuse) {
  double temperature = out->temperature, top_p = out->top_p;
  if (!read_number(body, "temperature", 0.0, 2.0, false, "[0, 2]", &temperature, refuse)) return false;
  if (!read_number(body, "top_p", 0.0, 1.0, true, "(0, 1]", &top_p, refuse)) return false;
  out->temperature = static_cast<float>(temperature);
  out->top_p = static_cast<float>(top_p);
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return refuse("seed", "'seed' must be an integer");
    out->seed = it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
    out->has_seed = true;
  }
  return true;
}

}  // namespace

bool parse_openai_request(OpenAiEndpoint endpoint, std::string_view body_text, int32_t max_tokens_limit, OpenAiRequest* out,
                          OpenAiError* error) {
  const Refusal refuse{error};
  *out = OpenAiRequest{};
  out->endpoint = endpoint;
  StrictJson parsed = parse_strict_json(body_text);
  if (!parsed.syntax_error.empty()) return refuse("", "the request body is not valid JSON: " + parsed.syntax_error);
  if (!parsed.repeated_key.empty()) return refuse(parsed.repeated_key, "the key '" + parsed.repeated_key + "' is given twice");
  const json& body = parsed.value;
  if (!body.is_object()) return refuse("", "the request body must be a JSON object");
  if (auto m = body.find("model"); m != body.end() && !m->is_null()) {
    if (!m->is_string()) return refuse("model", "'model' must be a string");
    out->model = m->get<std::string>();
  }
  const bool chat = endpoint == OpenAiEndpoint::ChatCompletions;
  if (!(chat ? read_messages(body, out, refuse) : read_prompt(body, out, refuse))) return false;
  if (!read_max_tokens(body, max_tokens_limit, out, refuse) || !read_sampling(body, out, refuse) || !read_stop(body, out, refuse) ||
      !read_bool(body, "stream", &out->stream, refuse) || !read_extension(body, out, refuse))
    return false;
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object()) return refuse("stream_options", "'stream_options' must be an object");
    if (!read_bool(*so, "include_usage", &out->include_usage, refuse)) return false;
  }
  if (auto n = body.find("n"); n != body.end() && !n->is_null() && *n != 1)
    return refuse("n", "'n' must be 1: specd returns one choice per request");
  if (!read_neutral(body, "presence_penalty", 0, refuse) || !read_neutral(body, "frequency_penalty", 0, refuse) ||
      !read_neutral(body, "best_of", 1, refuse) || !read_neutral(body, "echo", false, refuse) ||
      !read_neutral(body, "logit_bias", json::object(), refuse) || !read_neutral(body, "top_logprobs", 0, refuse))
    return false;
  if (auto lp = body.find("logprobs"); lp != body.end() && !lp->is_null() && *lp != false && *lp != 0)
    return read_neutral(body, "logprobs", false, refuse);
  if (auto rf = body.find("response_format"); rf != body.end() && !rf->is_null() && *rf != json{{"type", "text"}})
    return refuse("response_format", "'response_format' must be {\"type\": \"text\"}: specd has no constrained decoding yet");
  return true;
}

}  // namespace specd::daemon
