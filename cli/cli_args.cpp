// CliArgs: parsing and typed getters with named errors for the command-line tools.
#include "cli/cli_args.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iterator>

namespace specd::cli {

namespace {

// The short forms of the convention; each exists only where its long option does.
const std::map<char, std::string>& short_names() {
  static const std::map<char, std::string> names = {
      {'h', "help"}, {'m', "model"}, {'p', "prompt"}, {'n', "max-tokens"}, {'t', "threads"}};
  return names;
}

// "-m" → "model" when the program has --model; otherwise nothing (an unknown option).
std::optional<std::string> long_name_of(const std::string& arg, const std::set<std::string>& known,
                                        const std::set<std::string>& flags) {
  if (arg.size() != 2) return std::nullopt;
  const auto it = short_names().find(arg[1]);
  if (it == short_names().end() || (!known.count(it->second) && !flags.count(it->second))) return std::nullopt;
  return it->second;
}

}  // namespace

Result<CliArgs> CliArgs::parse(int argc, char** argv, const std::set<std::string>& known,
                               const std::set<std::string>& program_flags, bool allow_positional) {
  std::set<std::string> flags = program_flags;
  flags.insert({"help", "version"});
  CliArgs a;
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!options_ended && arg == "--") {
      options_ended = true;
      continue;
    }
    // "-" is an argument by the usual convention (stdin), as is everything after "--".
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      if (!allow_positional) return make_error(SPECD_E_INVALID_ARG, "unexpected argument '%s'", arg.c_str());
      a.positional_.push_back(arg);
      continue;
    }
    std::string name, value;
    bool inline_value = false;
    if (arg[1] != '-') {
      const auto long_name = long_name_of(arg, known, flags);
      if (!long_name) return make_error(SPECD_E_INVALID_ARG, "unknown option %s", arg.c_str());
      name = *long_name;
    } else {
      name = arg.substr(2);
      const size_t eq = name.find('=');
      inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (!known.count(name) && !flags.count(name))
        return make_error(SPECD_E_INVALID_ARG, "unknown option --%s", name.c_str());
    }
    if (flags.count(name)) {
      if (inline_value) return make_error(SPECD_E_INVALID_ARG, "option --%s takes no value", name.c_str());
      a.values_.emplace(name, "1");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) return make_error(SPECD_E_INVALID_ARG, "option --%s needs a value", name.c_str());
      value = argv[++i];
    }
    a.values_.emplace(name, value);
  }
  return a;
}

std::string CliArgs::str(const std::string& name, const std::string& def) const {
  auto [lo, hi] = values_.equal_range(name);
  return lo == hi ? def : std::prev(hi)->second;
}

std::vector<std::string> CliArgs::all(const std::string& name) const {
  std::vector<std::string> out;
  for (auto [lo, hi] = values_.equal_range(name); lo != hi; ++lo) out.push_back(lo->second);
  return out;
}

Result<int64_t> CliArgs::integer(const std::string& name, int64_t def, int64_t lo, int64_t hi) const {
  if (!has(name)) return def;
  const std::string text = str(name);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno || end == text.c_str() || *end || v < lo || v > hi)
    return make_error(SPECD_E_INVALID_ARG, "--%s must be an integer in [%lld, %lld], got '%s'", name.c_str(),
                      static_cast<long long>(lo), static_cast<long long>(hi), text.c_str());
  return static_cast<int64_t>(v);
}

Result<double> CliArgs::number(const std::string& name, double def, double lo, double hi) const {
  if (!has(name)) return def;
  const std::string text = str(name);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (errno || end == text.c_str() || *end || !(v >= lo && v <= hi))
    return make_error(SPECD_E_INVALID_ARG, "--%s must be a number in [%g, %g], got '%s'", name.c_str(), lo, hi,
                      text.c_str());
  return v;
}

Result<std::vector<int32_t>> CliArgs::id_list(const std::string& s) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || errno || *end || v < 0 || v > INT32_MAX)
      return make_error(SPECD_E_INVALID_ARG, "bad token id '%s' in id list", item.c_str());
    ids.push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

}  // namespace specd::cli
