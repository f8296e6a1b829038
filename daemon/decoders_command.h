// `specd decoders`: list the decoder plugins this build would load, in-process, with their options.
#pragma once

namespace specd::daemon {

// argv[0] is "decoders". Returns the process exit code (0 ok, 1 no decoder found, 2 usage error).
int decoders_command(int argc, char** argv);

}  // namespace specd::daemon
