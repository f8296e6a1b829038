// Tokens into a Program (jinja_ast.h), following jinja2's grammar and operator precedence.
#pragma once

#include <memory>
#include <string_view>

#include "chat/jinja_ast.h"

namespace specd::chat::jinja {

// Parses a whole template. Throws Failure: SPECD_E_UNSUPPORTED ("chat template line N: ...") for
// syntax errors, unknown tags, filters and tests and constructs outside the supported subset
// (chat/README.md); SPECD_E_LIMIT when blocks or expressions nest deeper than kMaxNesting.
std::shared_ptr<const Program> parse_program(std::string_view source);

inline constexpr int kMaxNesting = 100;

}  // namespace specd::chat::jinja
