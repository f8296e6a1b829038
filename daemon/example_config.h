// `specd serve --print-config`: packaging/specd.toml.in (the installed config's source, compiled in)
// with its @NAMES@ filled for this build and user, so the two never disagree and nothing is left
// to fill by hand.
#pragma once

#include "clients/default_paths.h"
#include "daemon/config.h"

#include <string>

namespace specd::daemon {

// The commented config. cfg's models (from --model) replace the example model when it has any.
std::string example_config(const DefaultPaths& paths, const Config& cfg);

}  // namespace specd::daemon
