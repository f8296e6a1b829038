// specctl's command line: the command, its options (checked against what the command accepts), and typed values.
#pragma once

#include "kernels/result.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace specd::specctl {

struct Args {
  std::string command;                                   // "generate", "chat", "status", "runs", "decoders", "models"
  std::map<std::string, std::vector<std::string>> opts;  // "--name" → its values in order ("" for flags)

  bool has(const std::string& name) const { return opts.count(name) != 0; }
  // The last value of an option, or def.
  std::string last(const std::string& name, const std::string& def = "") const;
  std::vector<std::string> all(const std::string& name) const;
  // Typed values; errors name the option and the accepted range.
  Result<int64_t> integer(const std::string& name, int64_t def, int64_t lo, int64_t hi) const;
  Result<uint64_t> unsigned_integer(const std::string& name, uint64_t def) const;
  Result<double> number(const std::string& name, double def, double lo, double hi) const;
};

// Parse argv (options may come before or after the command; "--name VALUE" or "--name=VALUE").
// Errors are usage errors: unknown command or option, a missing value, no command.
Result<Args> parse_args(int argc, char** argv);

// "1,403,407" → ids; errors name the bad element.
Result<std::vector<int32_t>> parse_ids(const std::string& text);

// The usage text printed for --help and after usage errors.
const char* usage_text();

}  // namespace specd::specctl
