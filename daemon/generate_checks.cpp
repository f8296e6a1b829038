// Generate checks: a Generate's fields the loop can refuse without the model.
#include "daemon/generate_checks.h"

#include "protocol_generated.h"

#include <cmath>

namespace specd::daemon {
namespace {

Status check_wire_name(const flatbuffers::String* s, const char* field) {
  return s ? check_name(std::string_view(s->c_str(), s->size()), field) : Status{};
}

}  // namespace

// A model or decoder name is printable: a NUL or control byte would be echoed back in messages
// (and the run log) as if it were part of the name.
Status check_name(std::string_view s, const char* field) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 || b == 0x7f)
      return make_error(SPECD_E_INVALID_ARG, "%s name contains a control character (byte 0x%02x at offset %zu)", field, b, i);
  }
  return {};
}

std::string printable(std::string name) {
  for (char& ch : name)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  return name;
}

Status check_generate(const wire::Generate& g, const Limits& limits) {
  SPECD_TRY(check_wire_name(g.model(), "model"));
  SPECD_TRY(check_wire_name(g.decoder(), "decoder"));
  const bool has_ids = g.prompt_ids() && g.prompt_ids()->size() > 0;
  if (!has_ids && (!g.prompt_text() || g.prompt_text()->size() == 0))
    return make_error(SPECD_E_INVALID_ARG, "empty prompt: set prompt_text or prompt_ids");
  if (g.max_tokens() < 1 || g.max_tokens() > limits.max_tokens)
    return make_error(SPECD_E_LIMIT, "max_tokens %d is outside [1, %d] (limits.max_tokens)", g.max_tokens(), limits.max_tokens);
  if (const wire::Sampling* s = g.sampling()) {
    if (!std::isfinite(s->temperature()) || s->temperature() > 100.0f || s->top_k() < 0 || !(s->top_p() >= 0.0f && s->top_p() <= 1.0f) ||
        !(s->min_p() >= 0.0f && s->min_p() <= 1.0f))
      return make_error(SPECD_E_INVALID_ARG, "sampling out of range: temperature %g (<= 100), top_k %d (>= 0), top_p %g and min_p %g (in [0, 1])",
                        static_cast<double>(s->temperature()), s->top_k(), static_cast<double>(s->top_p()), static_cast<double>(s->min_p()));
  }
  return {};
}

}  // namespace specd::daemon
