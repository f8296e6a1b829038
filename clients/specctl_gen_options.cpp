// The generation options generate and chat share, range-checked.
#include "clients/specctl_gen_options.h"

#include <nlohmann/json.hpp>

#include <cstdint>

namespace specd::specctl {

Result<std::string> decoder_options_json(const std::vector<std::string>& items) {
  nlohmann::json options = nlohmann::json::object();
  for (const std::string& kv : items) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error{SPECD_E_INVALID_ARG, "--decoder-opt wants KEY=VALUE, got '" + kv + "'"};
    }
    options[kv.substr(0, eq)] = kv.substr(eq + 1);  // values travel as strings: {"k":"4"}
  }
  if (options.empty()) return std::string();
  // Arguments need not be UTF-8; the daemon's JSON parser would refuse such bytes anyway.
  return options.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<client::GenParams> gen_options(const Args& a) {
  client::GenParams p;
  p.model = a.last("--model");
  p.decoder = a.last("--decoder");
  auto options = decoder_options_json(a.all("--decoder-opt"));
  if (!options) return options.error();
  p.decoder_options_json = std::move(options.value());
  auto max_tokens = a.integer("--max-tokens", 128, 1, INT32_MAX);
  auto top_k = a.integer("--top-k", 0, 0, INT32_MAX);
  auto temperature = a.number("--temperature", 0.0, 0.0, 1e6);
  auto top_p = a.number("--top-p", 1.0, 0.0, 1.0);
  auto min_p = a.number("--min-p", 0.0, 0.0, 1.0);
  auto seed = a.unsigned_integer("--seed", 0);
  for (const auto* r : {&max_tokens, &top_k}) {
    if (!*r) return r->error();
  }
  for (const auto* r : {&temperature, &top_p, &min_p}) {
    if (!*r) return r->error();
  }
  if (!seed) return seed.error();
  p.max_tokens = static_cast<int32_t>(max_tokens.value());
  p.top_k = static_cast<int32_t>(top_k.value());
  p.temperature = static_cast<float>(temperature.value());
  p.top_p = static_cast<float>(top_p.value());
  p.min_p = static_cast<float>(min_p.value());
  p.seed = seed.value();
  p.stop = a.all("--stop");
  p.stream = !a.has("--json");
  return p;
}

}  // namespace specd::specctl
