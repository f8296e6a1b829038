// The host side of the decoder ABI: the specd_host_api table handed to every decoder.
#pragma once

#include "kernels/result.h"

#include <specd/decoder.h>

#include <nlohmann/json.hpp>

#include <string>

namespace specd::daemon {

// The table for this build's ABI version (static storage).
const specd_host_api* host_api();
// The table as a host of decoder ABI 1.<minor> had it (struct_size and abi_minor of that version;
// minors 0 to 2 are kept, anything newer is this build's), so tests and RuntimeLimits can check that
// decoders take their SPECD_HAS fallbacks.
const specd_host_api* host_api(uint32_t minor);

// A request's decoder options: text ("" means {}) holding one JSON object in which no object
// repeats a key. Returns the parsed object; errors: SPECD_E_BAD_OPTION naming the repeated key,
// or saying the text is not JSON or not an object.
Result<nlohmann::json> parse_decoder_options(const std::string& text);

}  // namespace specd::daemon
