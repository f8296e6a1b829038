// Generate checks: a Generate's fields the loop can refuse without the model.
#include "daemon/generate_checks.h"

#include "protocol_generated.h"

#include <cmath>
#include <utility>

namespace specd::daemon {
namespace {

Status check_wire_name(const flatbuffers::String* s, const char* field) {
  return s ? check_name(std::string_view(s->c_str(), s->size()), field) : Status{};
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): a template renders and
// may JSON-encode message text, which must therefore be text.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : b & (0x7fu >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 0x2) return false;
      cp = (cp << 6) | (c & 0x3fu);
    }
    const uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_of[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

// A conversation replaces the prompt: both at once would leave which one ran to a guess.
Status check_messages(const wire::Generate& g) {
  const bool has_ids = g.prompt_ids() && g.prompt_ids()->size() > 0;
  if (has_ids || (g.prompt_text() && g.prompt_text()->size() > 0))
    return make_error(SPECD_E_INVALID_ARG, "messages and a prompt (prompt_text or prompt_ids) together: send one of them");
  for (flatbuffers::uoffset_t i = 0; i < g.messages()->size(); ++i) {
    const wire::ChatMessage* m = g.messages()->Get(i);
    if (!m->role() || m->role()->size() == 0) return make_error(SPECD_E_INVALID_ARG, "messages[%u] has no role", i);
    for (const auto& [field, s] : {std::pair{"role", m->role()}, std::pair{"content", m->content()}})
      if (s && !valid_utf8(std::string_view(s->c_str(), s->size())))
        return make_error(SPECD_E_INVALID_ARG, "messages[%u].%s is not valid UTF-8", i, field);
  }
  return {};
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
  if (g.messages() && g.messages()->size() > 0) {
    SPECD_TRY(check_messages(g));
  } else if (!has_ids && (!g.prompt_text() || g.prompt_text()->size() == 0)) {
    return make_error(SPECD_E_INVALID_ARG, "empty prompt: set prompt_text, prompt_ids or messages");
  }
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
