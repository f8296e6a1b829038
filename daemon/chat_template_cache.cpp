// The chat-template cache (daemon/chat_template_cache.h): a parsed template is immutable and shares
// its program between copies, so handing out copies of the kept one is cheap and thread-safe.
#include "daemon/chat_template_cache.h"

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace specd::daemon {
namespace {

constexpr size_t kMaxTemplates = 64;  // a daemon has a handful of models; a bound against surprises

std::mutex g_mutex;
std::map<std::string, chat::ChatTemplate, std::less<>> g_templates;
std::atomic<uint64_t> g_parses{0};

}  // namespace

Result<chat::ChatTemplate> cached_chat_template(std::string_view source) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (auto it = g_templates.find(source); it != g_templates.end()) return it->second;
  }
  // Parsed outside the lock: another thread parsing the same source at once only costs a parse.
  ++g_parses;
  auto parsed = chat::ChatTemplate::parse(source);
  if (!parsed) return parsed.error();
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_templates.size() >= kMaxTemplates) g_templates.clear();
  g_templates.emplace(std::string(source), *parsed);
  return parsed;
}

uint64_t chat_template_parses() { return g_parses.load(); }

}  // namespace specd::daemon
