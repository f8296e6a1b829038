// The `specd` executable: dispatches subcommands (generate, serve, tokenize, perplexity, version).
#include "daemon/decoders_command.h"
#include "daemon/generate_command.h"
#include "daemon/perplexity_command.h"
#include "daemon/serve_command.h"
#include "daemon/tokenize_command.h"

#include <cstdio>
#include <cstring>

namespace {
void usage(FILE* out) {
  std::fputs(
      "usage: specd <command> [options]\n"
      "commands:\n"
      "  generate   one-shot in-process generation (specd generate --help)\n"
      "  decoders   the decoder plugins with their options, lossless or lossy, and the files they need\n"
      "  serve      run the daemon on a Unix socket (specd serve --help)\n"
      "  tokenize   print the token ids of a text (specd tokenize --help)\n"
      "  perplexity a model's perplexity on a text file, as llama-perplexity (specd perplexity --help)\n"
      "  version    print the version\n",
      out);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char* cmd = argv[1];
  if (std::strcmp(cmd, "generate") == 0) return specd::daemon::generate_command(argc - 1, argv + 1);
  if (std::strcmp(cmd, "decoders") == 0) return specd::daemon::decoders_command(argc - 1, argv + 1);
  if (std::strcmp(cmd, "serve") == 0) return specd::daemon::serve_command(argc - 1, argv + 1);
  if (std::strcmp(cmd, "tokenize") == 0) return specd::daemon::tokenize_command(argc - 1, argv + 1);
  if (std::strcmp(cmd, "perplexity") == 0) return specd::daemon::perplexity_command(argc - 1, argv + 1);
  if (std::strcmp(cmd, "version") == 0 || std::strcmp(cmd, "--version") == 0) {
    std::printf("specd %s\n", SPECD_VERSION);
    return 0;
  }
  if (std::strcmp(cmd, "--help") == 0 || std::strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "specd: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
