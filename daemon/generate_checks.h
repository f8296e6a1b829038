// Generate checks: a Generate's fields the loop can refuse without the model; the engine checks
// the rest (model, decoder, options, prompt length against the context).
#pragma once

#include "daemon/config.h"
#include "kernels/result.h"

#include <string>
#include <string_view>

namespace specd::wire {
struct Generate;
}

namespace specd::daemon {

// Check g against the wire rules and limits. Errors: SPECD_E_INVALID_ARG for a model or decoder
// name holding a NUL or control byte (naming the field), an empty prompt, messages beside a prompt,
// a message without a role or with text that is not UTF-8, or sampling out of range;
// SPECD_E_LIMIT for max_tokens outside [1, limits.max_tokens].
Status check_generate(const wire::Generate& g, const Limits& limits);

// A model or decoder name (field says which) holds no NUL or control byte. Errors: SPECD_E_INVALID_ARG
// naming the field, the byte and its offset.
Status check_name(std::string_view name, const char* field);

// name with its control bytes (< 0x20, 0x7f) shown as '?', for a refused request's run-log row.
std::string printable(std::string name);

}  // namespace specd::daemon
