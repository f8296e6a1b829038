// `specd decoders`: the plugin directories scanned as `specd serve` does, each decoder described.
#include "daemon/decoders_command.h"

#include "clients/decoder_text.h"
#include "cli/cli_args.h"
#include "cli/command_line.h"
#include "daemon/decoder_catalog.h"
#include "daemon/runtime_setup.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace specd::daemon {
namespace {

constexpr const char* kHelp =
    "usage: specd decoders [--plugin-dir DIR ...] [--json]\n"
    "  --plugin-dir DIR   more decoders, looked at before the built-in ones (repeatable)\n"
    "  --json             one JSON array instead of text\n"
    "  -h, --help         this text;  --version  the version\n"
    "Lists each decoder with its options (default, range, meaning), whether it is lossless, and the\n"
    "files it needs.\n";

}  // namespace

int decoders_command(int argc, char** argv) {
  int exit_code = 0;
  const auto args = cli::parse_command_line("specd decoders", kHelp, argc, argv, {"plugin-dir"}, {"json"}, &exit_code);
  if (!args) return exit_code;
  PluginRegistry plugins;
  load_plugin_dirs(plugins, plugin_dirs_with_defaults(args->all("plugin-dir")));
  const auto loaded = plugins.list();
  if (loaded.empty()) {
    std::fprintf(stderr, "specd decoders: no decoder found in the plugin directories\n");
    return 1;
  }
  nlohmann::json all = nlohmann::json::array();
  for (const LoadedDecoder* d : loaded) {
    const nlohmann::json e = decoder_json(*d);
    if (args->has("json")) all.push_back(e);
    else std::printf("%s\n", decoder_text(e).c_str());
  }
  if (args->has("json")) std::printf("%s\n", all.dump(2).c_str());
  return 0;
}

}  // namespace specd::daemon
