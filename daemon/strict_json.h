// Strict JSON: nlohmann's parser plus the one rule it lacks, that a key appears once per object.
// Client-supplied JSON (decoder options, HTTP request bodies) goes through this, so a repeated key
// is a named error rather than a silent last-one-wins.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace specd::daemon {

struct StrictJson {
  nlohmann::json value;        // discarded (null) when either field below is set
  std::string syntax_error;    // nlohmann's message for malformed text
  std::string repeated_key;    // the first key given twice within one object
  bool ok() const { return syntax_error.empty() && repeated_key.empty(); }
};

// Parse text; never throws. Nesting deeper than nlohmann's own limits is reported as a syntax error.
StrictJson parse_strict_json(std::string_view text);

}  // namespace specd::daemon
