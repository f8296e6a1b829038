// The socket and run-log places of `specd serve`: the config's and flags' if they name them, else
// clients/default_paths.h's for this user or the system service, with missing directories made.
#pragma once

#include "clients/default_paths.h"
#include "daemon/config.h"
#include "kernels/result.h"

namespace specd::daemon {

// Fill cfg's empty socket_path and runlog_path from d.
void apply_default_paths(Config& cfg, const DefaultPaths& d);

// Make the missing directories above file_path (mkdir -p), each with mode: 0700 for a user's own
// places, so no other local user can reach the socket or read the run log. Directories that exist
// are left as they are. Errors: SPECD_E_IO naming the directory and the reason.
Status make_parent_dirs(const std::string& file_path, uint32_t mode);

// The modes make_parent_dirs gets for d: a user's places are private (0700); the system socket's
// directory must let the socket's group through (0755), the system run log's need not (0700).
uint32_t socket_dir_mode(const DefaultPaths& d);
constexpr uint32_t kRunlogDirMode = 0700;

}  // namespace specd::daemon
