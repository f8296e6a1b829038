// CliArgs: the one command-line convention of every specd program (specd COMMAND, specctl, the
// specd-* tools, specd-bench): --name VALUE / --name=VALUE, short forms of the common options,
// -h/--help and --version everywhere, unknown options named; typed, range-checked getters. The
// preamble that answers --help and --version is cli/command_line.h.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace specd::cli {

class CliArgs {
 public:
  // known: options that take one value; flags: options that take none (e.g. "json"). "help" and
  // "version" are flags of every program. The short forms -h (help), -m (model), -p (prompt),
  // -n (max-tokens) and -t (threads) exist wherever their long option does, as in llama.cpp.
  // Arguments that are not options are refused ("unexpected argument") unless allow_positional,
  // and "--" makes every later argument one. An unknown option is refused by its name and never
  // takes the next argument as its value.
  static Result<CliArgs> parse(int argc, char** argv, const std::set<std::string>& known,
                               const std::set<std::string>& flags, bool allow_positional = false);
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  // The last value of an option, or def.
  std::string str(const std::string& name, const std::string& def = "") const;
  // Every value of a repeatable option, in command-line order.
  std::vector<std::string> all(const std::string& name) const;
  // The arguments that are not options, in order (only with allow_positional).
  const std::vector<std::string>& positional() const { return positional_; }
  Result<int64_t> integer(const std::string& name, int64_t def, int64_t lo, int64_t hi) const;
  Result<double> number(const std::string& name, double def, double lo, double hi) const;
  // "1,403,407" → ids; errors name the bad element.
  static Result<std::vector<int32_t>> id_list(const std::string& s);

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace specd::cli
