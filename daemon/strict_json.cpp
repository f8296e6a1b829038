// Strict JSON: the repeated-key check rides on nlohmann's parser callback (one set of keys per
// object still open), so the text is parsed once.
#include "daemon/strict_json.h"

#include <set>
#include <vector>

namespace specd::daemon {

StrictJson parse_strict_json(std::string_view text) {
  using json = nlohmann::json;
  StrictJson out;
  std::vector<std::set<std::string>> keys;  // the keys seen so far in each object still open
  const json::parser_callback_t note_keys = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) keys.emplace_back();
    if (ev == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (ev == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
        out.repeated_key.empty())
      out.repeated_key = parsed.get<std::string>();
    return true;
  };
  try {
    out.value = json::parse(text.begin(), text.end(), note_keys);
  } catch (const std::exception& e) {
    out.syntax_error = e.what();
  }
  if (!out.ok()) out.value = nullptr;
  return out;
}

}  // namespace specd::daemon
