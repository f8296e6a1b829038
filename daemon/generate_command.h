// `specd generate`: one-shot in-process generation with speed figures.
#pragma once

namespace specd::daemon {

// argv[0] is "generate". Returns the process exit code (0 ok, 1 runtime error, 2 usage error).
int generate_command(int argc, char** argv);

}  // namespace specd::daemon
