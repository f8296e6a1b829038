// `specd serve --help`: every flag with the default it has for this user (paths from
// clients/default_paths.h, numbers from a default Config), so the text cannot drift from the code.
#pragma once

#include "clients/default_paths.h"

#include <string>

namespace specd::daemon {

std::string serve_help(const DefaultPaths& paths);

}  // namespace specd::daemon
