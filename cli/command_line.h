// The preamble of every specd program: its command line read by CliArgs, then --help, --version
// and a bad SPECD_ISA answered the same way everywhere.
#pragma once

#include "cli/cli_args.h"

#include <optional>
#include <set>

namespace specd::cli {

// The version every program prints for --version (the project's, from meson).
const char* specd_version();

// A program's command line: CliArgs::parse, then the convention's answers. Returns the arguments,
// or nothing with *exit_code set: 2 after printing "PROGRAM: why" and usage to stderr for a bad
// line, 0 after printing usage (--help) or "PROGRAM VERSION" (--version) to stdout, and
// exit_code_for(its error) after "PROGRAM: why" for a SPECD_ISA this CPU cannot have. A program
// with a "json" flag whose line has --json gets those errors as one JSON object on stdout instead
// ({"error": NAME, "code": N, "message": ...}, no usage), as specctl --json does.
std::optional<CliArgs> parse_command_line(const char* program, const char* usage, int argc, char** argv,
                                          const std::set<std::string>& known, const std::set<std::string>& flags,
                                          int* exit_code);

}  // namespace specd::cli
