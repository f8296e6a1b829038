// The commands README.md shows, read from its text: every line of its code blocks (a `$ ` line
// with the output printed under it, or a plain command line; a shell line continued by `\` or an
// open quote is one command) and the first cell of each table row that is a command line
// (`build/...`, `scripts/...`, `bench/...`) or a row of options shared by programs (`--...`).
// tests/test_readme.cpp runs each of them or lists it as skipped, so the README cannot drift.
#pragma once

#include <string>
#include <vector>

namespace specd::test {

struct ReadmeCommand {
  enum Kind { kCodeBlock, kTableRow };
  Kind kind = kCodeBlock;
  // What the test lists it by: a code block's first line (its trailing comment dropped); a table
  // row's program ("build/daemon/specd generate", "build/tools/specd-quantize", "--decoder").
  std::string key;
  std::string text;                 // the whole command (code) or the first cell, `\|` unescaped
  std::vector<std::string> output;  // the lines printed under a `$ ` command
  int line = 0;                     // 1-based, in README.md
};

std::vector<ReadmeCommand> readme_commands(const std::string& readme);

// The options a command line names, in order: "--name" and "-x" words ("-p -" gives "-p").
std::vector<std::string> options_named(const std::string& command_line);

// True when `option` appears in `help` as a word of its own (not as the prefix of a longer option).
bool help_names(const std::string& help, const std::string& option);

}  // namespace specd::test
