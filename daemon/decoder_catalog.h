// What a loaded decoder says about itself for `specd decoders`, `specctl decoders` and the status
// reply: its options (ABI 1.2's table), lossless or lossy, and the files it needs, as the JSON
// object clients/decoder_text.h formats. A 1.1 plugin has no table: "described" is false.
#pragma once

#include "daemon/plugin_loader.h"

#include <nlohmann/json.hpp>

namespace specd::daemon {

// Read d's descriptor, touching the 1.2 fields only when its struct_size covers them:
// {"name", "version", "description", "path", "described", and when described "lossless", "needs",
// "options": [{"key", "type" ("int", "float", "string"), "default", "range", "meaning"}]}.
nlohmann::json decoder_json(const LoadedDecoder& d);

}  // namespace specd::daemon
