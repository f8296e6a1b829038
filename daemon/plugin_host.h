// The host side of the decoder ABI: the specd_host_api table handed to every decoder.
#pragma once

#include "kernels/result.h"

#include <specd/decoder.h>

#include <nlohmann/json.hpp>

#include <string>

namespace specd::daemon {

// The table for this build's ABI version (static storage).
const specd_host_api* host_api();

// A request's decoder options: text ("" means {}) holding one JSON object in which no object
// repeats a key. Returns the parsed object; errors: SPECD_E_BAD_OPTION naming the repeated key,
// or saying the text is not JSON or not an object.
Result<nlohmann::json> parse_decoder_options(const std::string& text);

}  // namespace specd::daemon
