// A decoder's description as text for people, from the JSON object that `specd decoders --json`
// prints and the daemon sends in its status (DecoderInfo.details_json): one formatter for
// `specd decoders` and `specctl decoders`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace specd {

// d: {"name", "version", "description", "path", "described", and when described "lossless",
// "needs", "options": [{"key", "type", "default", "range", "meaning"}]}. Missing fields read as empty.
std::string decoder_text(const nlohmann::json& d);

}  // namespace specd
