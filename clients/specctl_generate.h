// `specctl generate`: the request from the shared generation options, its text streamed or its
// report as JSON (cli/generation_report.h, the same as `specd generate`'s).
#pragma once

#include "clients/specctl_args.h"
#include "clients/specd_client.hpp"

namespace specd::specctl {

// Every generate option, read as `specd generate` reads them, checked before connecting (so usage
// errors never depend on a daemon). Errors name the option.
Result<client::GenParams> gen_params(const Args& a);

// The same options but the prompt, for `specctl chat` (whose prompt is the conversation).
Result<client::GenParams> chat_params(const Args& a);

// Run p: with --json print its report (one JSON object); otherwise stream the text, then the stats
// line on stderr; Ctrl-C cancels. Returns the exit status; a daemon error ends streaming with
// "specctl: MESSAGE" and that error's status, and with --json throws client::Error.
int generate(client::Client& c, const client::GenParams& p);

// A failed command, with exit status exit_code: with as_json one JSON object on stdout
// ({"error": NAME, "code": N, "message": ...}); otherwise "specctl: MESSAGE" on stderr.
int complain(bool as_json, int code, const std::string& message, int exit_code);

}  // namespace specd::specctl
