// Names and messages of SPECD_E_* codes as static strings, including codes this build does not know.
#pragma once

namespace specd::clients {

// "kv cache full" / "KV_FULL"; an extended code gets its primary's text; an unknown code gets
// "unknown error -57" from a static table (no buffer, no allocation, safe from any thread).
const char* error_message(int rc);
const char* error_name(int rc);

}  // namespace specd::clients
