// The daemon's log: one line per event on stderr, which journald keeps, filtered by
// [daemon] log_level / --log-level. Under journald (stderr is $JOURNAL_STREAM) each line starts with the
// syslog priority ("<4>"), so `journalctl -p warning` works; on a terminal it reads "specd: warning: ...".
#pragma once

#include "kernels/result.h"

#include <string_view>

namespace specd::daemon {

enum class LogLevel : int { Error = 0, Warn = 1, Info = 2, Debug = 3 };

// "error", "warn" (or "warning"), "info", "debug". Errors: SPECD_E_INVALID_ARG listing them.
Result<LogLevel> parse_log_level(std::string_view text);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
// One line (the text must not end in '\n'). Thread-safe: a single write per line.
void log_line(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace specd::daemon
