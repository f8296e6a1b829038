// CliArgs: a small --flag VALUE / --flag=VALUE parser with typed, range-checked getters.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace specd::daemon {

class CliArgs {
 public:
  // flags: options that take no value (e.g. "json"); every other "--name" takes one value.
  static Result<CliArgs> parse(int argc, char** argv, const std::set<std::string>& known,
                               const std::set<std::string>& flags);
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  // The last value of an option, or def.
  std::string str(const std::string& name, const std::string& def = "") const;
  // Every value of a repeatable option, in command-line order.
  std::vector<std::string> all(const std::string& name) const;
  Result<int64_t> integer(const std::string& name, int64_t def, int64_t lo, int64_t hi) const;
  Result<double> number(const std::string& name, double def, double lo, double hi) const;
  // "1,403,407" → ids; errors name the bad element.
  static Result<std::vector<int32_t>> id_list(const std::string& s);

 private:
  std::multimap<std::string, std::string> values_;
};

// A `specd COMMAND` line: CliArgs::parse with --help added to flags. Returns the arguments, or
// nothing with *exit_code set: 2 after printing "specd COMMAND: why" and usage to stderr for a bad
// line, 0 after printing usage to stdout for --help.
std::optional<CliArgs> parse_command_line(const char* command, const char* usage, int argc, char** argv,
                                          const std::set<std::string>& known, std::set<std::string> flags, int* exit_code);

}  // namespace specd::daemon
