// specctl's argument parser: per-command option sets, --name VALUE / --name=VALUE, typed and range-checked values.
#include "clients/specctl_args.h"

#include <specd/client.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace specd::specctl {
namespace {

// Options that take no value.
const std::set<std::string> kFlags = {"--json", "--help"};

// What each command accepts, besides --socket, --timeout-ms, --json and --help.
const std::map<std::string, std::set<std::string>>& command_options() {
  static const std::map<std::string, std::set<std::string>> table = {
      {"generate",
       {"--prompt", "--prompt-ids", "--model", "--decoder", "--decoder-opt", "--max-tokens", "--temperature", "--top-k",
        "--top-p", "--min-p", "--seed", "--stop"}},
      {"status", {}},
      {"runs", {"--last", "--decoder", "--model", "--since-ms"}},
      {"decoders", {}},
      {"models", {}},
  };
  return table;
}

const std::set<std::string> kGlobal = {"--socket", "--timeout-ms", "--json", "--help"};

Error usage(const std::string& what) { return Error{SPECD_E_INVALID_ARG, what}; }

}  // namespace

const char* usage_text() {
  return "usage: specctl [--socket PATH] [--timeout-ms MS] [--json] COMMAND [OPTIONS]\n"
         "  generate  --prompt TEXT | --prompt-ids 1,403,...  [--model M] [--decoder NAME]\n"
         "            [--decoder-opt K=V]... [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
         "            [--min-p P] [--seed S] [--stop TEXT]...   stream text (--json: one JSON object)\n"
         "  status                                            the daemon's models, decoders, queue, memory\n"
         "  runs      [--last N] [--decoder X] [--model Y] [--since-ms UNIX_MS]   the run log, newest first\n"
         "  decoders                                          the loaded decoder plugins\n"
         "  models                                            the loaded models\n"
         "The socket is --socket, else $SPECD_SOCKET, else $XDG_RUNTIME_DIR/specd/specd.sock if there, else " SPECD_DEFAULT_SOCKET ".\n"
         "Exit status: 0 ok, 1 the request failed, 2 usage,\n"
         "             3 cannot reach the daemon (not running, no answer),\n"
         "             4 access denied (the socket's permissions or the daemon's [access] lists).\n";
}

std::string Args::last(const std::string& name, const std::string& def) const {
  const auto it = opts.find(name);
  return it == opts.end() ? def : it->second.back();
}

std::vector<std::string> Args::all(const std::string& name) const {
  const auto it = opts.find(name);
  return it == opts.end() ? std::vector<std::string>() : it->second;
}

Result<int64_t> Args::integer(const std::string& name, int64_t def, int64_t lo, int64_t hi) const {
  if (!has(name)) return def;
  const std::string s = last(name);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) {
    return usage(name + " wants an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + s +
                 "'");
  }
  return v;
}

Result<uint64_t> Args::unsigned_integer(const std::string& name, uint64_t def) const {
  if (!has(name)) return def;
  const std::string s = last(name);
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return usage(name + " wants an unsigned integer, got '" + s + "'");
  }
  return v;
}

Result<double> Args::number(const std::string& name, double def, double lo, double hi) const {
  if (!has(name)) return def;
  const std::string s = last(name);
  double v = 0.0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < lo || v > hi) {
    return usage(name + " wants a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + s + "'");
  }
  return v;
}

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    int32_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v < 0) {
      return usage("--prompt-ids: '" + item + "' is not a token id (want e.g. 1,403,407)");
    }
    ids.push_back(v);
    pos = comma + 1;
  }
  return ids;
}

Result<Args> parse_args(int argc, char** argv) {
  Args args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
      continue;
    }
    std::string value;
    const size_t eq = a.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (kFlags.count(a)) {
      if (inline_value) return usage(a + " takes no value");
    } else if (!inline_value) {
      if (i + 1 >= argc) return usage(a + " needs a value");
      value = argv[++i];
    }
    args.opts[a].push_back(value);
  }
  if (args.has("--help")) return args;
  if (positional.empty()) return usage("no command given");
  if (positional.size() > 1) return usage("unexpected argument '" + positional[1] + "'");
  args.command = positional[0];
  const auto cmd = command_options().find(args.command);
  if (cmd == command_options().end()) return usage("unknown command '" + args.command + "'");
  for (const auto& [name, values] : args.opts) {
    if (!kGlobal.count(name) && !cmd->second.count(name)) {
      return usage("unknown option " + name + " for '" + args.command + "'");
    }
  }
  return args;
}

}  // namespace specd::specctl
