// Text for one decoder's description (see decoder_text.h).
#include "clients/decoder_text.h"

namespace specd {
namespace {

std::string field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string decoder_text(const nlohmann::json& d) {
  const bool described = d.value("described", false);
  std::string out = field(d, "name") + " " + field(d, "version") + "  ";
  out += described ? (d.value("lossless", false) ? "lossless" : "lossy") : "lossless or lossy: not described";
  out += "\n  " + field(d, "description") + "\n  file: " + field(d, "path") + "\n";
  if (!field(d, "needs").empty()) out += "  needs: " + field(d, "needs") + "\n";
  if (!described) return out + "  options not described (an ABI 1.1 plugin)\n";
  const auto opts = d.find("options");
  if (opts == d.end() || !opts->is_array() || opts->empty()) return out + "  no options\n";
  out += "  options (--decoder-opt KEY=VALUE):\n";
  for (const auto& o : *opts) {
    const std::string range = field(o, "range");
    out += "    " + field(o, "key") + " (" + field(o, "type") + (range.empty() ? "" : ", ") + range + ", default " +
           field(o, "default") + ")\n        " + field(o, "meaning") + "\n";
  }
  return out;
}

}  // namespace specd
