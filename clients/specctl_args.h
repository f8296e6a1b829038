// specctl's command line: the command and its options (checked against what the command accepts),
// read by the convention every specd program shares (cli/cli_args.h).
#pragma once

#include "cli/cli_args.h"
#include "kernels/result.h"

#include <string>

namespace specd::specctl {

struct Args {
  std::string command;  // "generate", "chat", "status", "runs", "decoders", "models"; empty with --help or --version
  cli::CliArgs cli;
};

// Parse argv (options may come before or after the command). Errors are usage errors naming the
// problem: unknown command, an option unknown or not for this command, a missing value, no command.
Result<Args> parse_args(int argc, char** argv);

// True when argv asks for --json, for reporting a bad command line as JSON too.
bool wants_json(int argc, char** argv);

// The usage text printed for --help and after usage errors.
const char* usage_text();

}  // namespace specd::specctl
