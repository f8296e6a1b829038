// `specd tokenize`: a model's (or a vocabulary-only GGUF's) tokenization of a text.
#pragma once

namespace specd::daemon {

// argv[0] is "tokenize". Returns the process exit code (0 ok, 1 runtime error, 2 usage error).
int tokenize_command(int argc, char** argv);

}  // namespace specd::daemon
