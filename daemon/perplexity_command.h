// `specd perplexity`: a model's perplexity on a text file, as llama.cpp's llama-perplexity reports it.
#pragma once

namespace specd::daemon {

// argv[0] is "perplexity". Returns the process exit code (0 ok, 1 runtime error, 2 usage error).
int perplexity_command(int argc, char** argv);

}  // namespace specd::daemon
