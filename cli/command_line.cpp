// parse_command_line: the preamble every specd program runs (usage, --help, --version, SPECD_ISA).
#include "cli/command_line.h"

#include "cli/exit_codes.h"
#include "cli/generation_report.h"
#include "kernels/cpu/matmul.h"

#include <cstdio>
#include <string_view>

namespace specd::cli {
namespace {

// Whether a line that could not be parsed asked for JSON: a program with a --json flag answers a
// bad line in JSON when the word --json is on it, wherever it stands (as specctl does).
bool line_asks_json(int argc, char** argv, const std::set<std::string>& flags) {
  if (!flags.count("json")) return false;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--json") return true;
  return false;
}

// "PROGRAM: why" (then the usage, for a bad line) on stderr, or with --json the error object on
// stdout alone, so that a script reads every failure the same way.
int complain(bool json, const char* program, const Error& e, const char* usage) {
  if (json) std::printf("%s\n", dump_json(error_json(e.code, e.message)).c_str());
  else std::fprintf(stderr, "%s: %s\n%s", program, e.message.c_str(), usage ? usage : "");
  return exit_code_for(e.code);
}

}  // namespace

const char* specd_version() { return SPECD_VERSION; }

std::optional<CliArgs> parse_command_line(const char* program, const char* usage, int argc, char** argv,
                                          const std::set<std::string>& known, const std::set<std::string>& flags,
                                          int* exit_code) {
  auto args = CliArgs::parse(argc, argv, known, flags);
  if (!args) {
    complain(line_asks_json(argc, argv, flags), program, args.error(), usage);
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  if (args->has("help") || args->has("version")) {
    if (args->has("help")) std::fputs(usage, stdout);
    else std::printf("%s %s\n", program, specd_version());
    *exit_code = 0;
    return std::nullopt;
  }
  // A kernel path that cannot be had is refused here rather than replaced silently at the first product.
  if (const Status isa = kernels::isa_env_status(); !isa) {
    *exit_code = complain(flags.count("json") && args->has("json"), program, isa.error(), nullptr);
    return std::nullopt;
  }
  return std::move(args.value());
}

}  // namespace specd::cli
