// The main() the specd-* model tools share: options parsed by CliArgs, --help, exit codes.
//
// Exit status: 0 after a successful run, --help (usage on stdout) or --version, 2 for a bad command line
// (the problem, then the usage, on stderr), 1 when the run fails ("NAME: error: MESSAGE").
#pragma once

#include "cli/command_line.h"
#include "kernels/ggml_type.h"
#include "kernels/result.h"

#include <cstdio>
#include <initializer_list>
#include <set>
#include <string>

namespace specd::tools {

// --name's value as one of `allowed` ("f32", "f16", "bf16", "q8_0"), or def when absent.
inline Result<specd::GgmlType> type_option(const cli::CliArgs& c, const std::string& name, specd::GgmlType def,
                                            std::initializer_list<specd::GgmlType> allowed) {
  if (!c.has(name)) return def;
  specd::GgmlType got;
  const bool named = specd::ggml_type_from_name(c.str(name), &got);
  std::string list;
  for (specd::GgmlType t : allowed) {
    if (named && t == got) return t;
    std::string n = specd::ggml_type_name(t);
    for (char& ch : n) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);  // usage spells them lower-case
    list += (list.empty() ? "" : "|") + n;
  }
  return make_error(SPECD_E_INVALID_ARG, "unknown --%s %s (%s)", name.c_str(), c.str(name).c_str(), list.c_str());
}

// args_from(CliArgs) -> Result<Args> checks and converts the options; run(Args&) -> Status does the work.
template <class ArgsFrom, class Run>
int tool_main(const char* name, const char* usage, int argc, char** argv, const std::set<std::string>& options,
              ArgsFrom args_from, Run run) {
  int exit_code = 0;
  const auto cli = cli::parse_command_line(name, usage, argc, argv, options, {}, &exit_code);
  if (!cli) return exit_code;
  auto args = args_from(*cli);
  if (!args) {
    std::fprintf(stderr, "%s: %s\n%s", name, args.error().message.c_str(), usage);
    return 2;
  }
  if (Status s = run(*args); !s) {
    std::fprintf(stderr, "%s: error: %s\n", name, s.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace specd::tools
