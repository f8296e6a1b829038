// `specd serve`: the daemon — config, models, run log, the engine thread and the socket loop.
#pragma once

namespace specd::daemon {

// argv[0] is "serve". Returns the process exit code: 0 after a clean drain (SIGTERM/SIGINT),
// 1 when start-up fails (a model, the socket, the run log), 2 for a bad config or flag.
int serve_command(int argc, char** argv);

}  // namespace specd::daemon
