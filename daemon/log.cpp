// Levelled log lines on stderr (see log.h).
#include "daemon/log.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

namespace specd::daemon {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};

// syslog priorities: err 3, warning 4, info 6, debug 7.
constexpr int kPriority[] = {3, 4, 6, 7};
constexpr const char* kTag[] = {"error: ", "warning: ", "", "debug: "};

// stderr is the journal's stream: $JOURNAL_STREAM names its device and inode (systemd.exec(5)); a
// child that inherited the variable but writes elsewhere does not match.
bool stderr_is_journal() {
  const char* v = std::getenv("JOURNAL_STREAM");
  unsigned long long dev = 0, ino = 0;
  struct stat st {};
  return v && std::sscanf(v, "%llu:%llu", &dev, &ino) == 2 && ::fstat(STDERR_FILENO, &st) == 0 &&
         static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

}  // namespace

Result<LogLevel> parse_log_level(std::string_view t) {
  if (t == "error") return LogLevel::Error;
  if (t == "warn" || t == "warning") return LogLevel::Warn;
  if (t == "info") return LogLevel::Info;
  if (t == "debug") return LogLevel::Debug;
  return make_error(SPECD_E_INVALID_ARG, "log level '%.*s' is not one of error, warn, info, debug",
                    static_cast<int>(t.size()), t.data());
}

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, const char* fmt, ...) {
  if (!log_enabled(level)) return;
  const int i = static_cast<int>(level);
  static const bool journal = stderr_is_journal();
  char buf[2048];
  int n = journal ? std::snprintf(buf, sizeof buf, "<%d>", kPriority[i])
                  : std::snprintf(buf, sizeof buf, "specd: %s", kTag[i]);
  va_list ap;
  va_start(ap, fmt);
  const int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  n = std::min<int>(n + std::max(m, 0), static_cast<int>(sizeof buf) - 2);
  buf[n++] = '\n';
  // One write(2) per line, so lines from the engine and loop threads never interleave.
  [[maybe_unused]] const ssize_t w = ::write(STDERR_FILENO, buf, static_cast<size_t>(n));
}

}  // namespace specd::daemon
