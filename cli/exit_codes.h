// The exit status of every specd program (README "Exit status"): one table, so `specd generate`
// in process and `specctl generate` through the daemon end the same way for the same error.
#pragma once

namespace specd::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;    // the request or run failed (a limit, the context, the KV cache, a device, a cancel)
constexpr int kExitUsage = 2;     // the command line or the request's arguments are wrong
constexpr int kExitNoDaemon = 3;  // the daemon cannot be reached (not running, no answer)
constexpr int kExitAccess = 4;    // access denied: the socket's permissions, the daemon's [access] lists, a side file

// The exit status for a failure with the SPECD_E_* code `code` (extended codes by their primary).
int exit_code_for(int code);

}  // namespace specd::cli
