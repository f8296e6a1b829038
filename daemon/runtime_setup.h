// Shared set-up of the decoding runtime for the command-line programs: plugin dirs.
#pragma once

#include "daemon/plugin_loader.h"
#include "kernels/result.h"

#include <string>
#include <vector>

namespace specd::daemon {

// Where decoders are looked for when no --plugin-dir is given: $SPECD_PLUGIN_DIR (colon-separated),
// else the build tree's plugins/ beside this executable's folder, else the installed decoder dir.
std::vector<std::string> default_plugin_dirs();

// extra (from --plugin-dir or [plugins] dirs), then default_plugin_dirs(), each once: given
// directories add to the built-in one and come first, so their decoders win a name clash.
std::vector<std::string> plugin_dirs_with_defaults(const std::vector<std::string>& extra);

// Load every dir; refusals are printed to stderr. Returns the number of decoders loaded.
int load_plugin_dirs(PluginRegistry& reg, const std::vector<std::string>& dirs);

}  // namespace specd::daemon
