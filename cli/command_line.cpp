// parse_command_line: the preamble every specd program runs (usage, --help, --version, SPECD_ISA).
#include "cli/command_line.h"

#include "cli/exit_codes.h"
#include "kernels/cpu/matmul.h"

#include <cstdio>

namespace specd::cli {

const char* specd_version() { return SPECD_VERSION; }

std::optional<CliArgs> parse_command_line(const char* program, const char* usage, int argc, char** argv,
                                          const std::set<std::string>& known, const std::set<std::string>& flags,
                                          int* exit_code) {
  auto args = CliArgs::parse(argc, argv, known, flags);
  if (!args) {
    std::fprintf(stderr, "%s: %s\n%s", program, args.error().message.c_str(), usage);
    *exit_code = 2;
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
    std::fprintf(stderr, "%s: %s\n", program, isa.error().message.c_str());
    *exit_code = exit_code_for(isa.error().code);
    return std::nullopt;
  }
  return std::move(args.value());
}

}  // namespace specd::cli
