// Reading README.md's commands (tests/readme_commands.h).
#include "tests/readme_commands.h"

#include <cctype>
#include <regex>
#include <sstream>

namespace specd::test {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Whether a shell line leaves a single or double quote open (backslash escapes outside '').
bool leaves_quote_open(const std::string& line, char* quote) {
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (*quote == 0 && c == '\\') ++i;
    else if (*quote == 0 && (c == '\'' || c == '"')) *quote = c;
    else if (c == *quote) *quote = 0;
  }
  return *quote != 0;
}

// A shell line without its trailing "  # comment" (a '#' outside quotes after a space).
std::string without_comment(const std::string& line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote == 0 && c == '#' && i > 0 && line[i - 1] == ' ') return trim(line.substr(0, i));
    if (quote == 0 && (c == '\'' || c == '"')) quote = c;
    else if (c == quote) quote = 0;
  }
  return trim(line);
}

// Joins continued lines (a trailing `\`, or a quote still open) into whole commands.
void add_shell_lines(const std::vector<std::pair<int, std::string>>& lines, std::vector<ReadmeCommand>* out) {
  ReadmeCommand cmd;
  char quote = 0;
  bool open = false;
  for (const auto& [number, raw] : lines) {
    const std::string line = quote ? raw : without_comment(raw);
    if (!open) {
      if (line.empty()) continue;
      cmd = ReadmeCommand{ReadmeCommand::kCodeBlock, line, line, {}, number};
    } else {
      cmd.text.append("\n").append(line);
    }
    const bool quoted = leaves_quote_open(line, &quote);
    open = quoted || (!line.empty() && line.back() == '\\');
    if (!open) out->push_back(cmd);
  }
}

// An indented block: `$ command` lines own the lines under them as their output.
void add_indented_block(const std::vector<std::pair<int, std::string>>& lines, std::vector<ReadmeCommand>* out) {
  if (!lines.empty() && starts_with(lines.front().second, "$ ")) {
    for (const auto& [number, line] : lines) {
      if (starts_with(line, "$ ")) out->push_back(ReadmeCommand{ReadmeCommand::kCodeBlock, line.substr(2), line.substr(2), {}, number});
      else out->back().output.push_back(line);
    }
    return;
  }
  add_shell_lines(lines, out);
}

// The key of a table row's command: its program, with the subcommand of specd and specctl.
std::string program_key(const std::string& cell) {
  std::istringstream words(cell);
  std::string program, sub;
  words >> program;
  const bool has_subcommands = program.ends_with("/specd") || program.ends_with("/specctl");
  if (has_subcommands && words >> sub && !sub.empty() && std::islower(static_cast<unsigned char>(sub[0]))) return program + " " + sub;
  return program;
}

// The first cell's first `code span` of a table row, with `\|` read as `|`; "" when there is none.
std::string first_cell_code(const std::string& row) {
  size_t end = 1;
  while (end < row.size() && !(row[end] == '|' && row[end - 1] != '\\')) ++end;
  const std::string cell = row.substr(1, end - 1);
  const size_t a = cell.find('`');
  const size_t b = a == std::string::npos ? a : cell.find('`', a + 1);
  if (b == std::string::npos) return "";
  std::string code = cell.substr(a + 1, b - a - 1);
  for (size_t at; (at = code.find("\\|")) != std::string::npos;) code.erase(at, 1);
  return code;
}

}  // namespace

std::vector<ReadmeCommand> readme_commands(const std::string& readme) {
  std::vector<std::string> lines;
  std::istringstream in(readme);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::vector<ReadmeCommand> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (starts_with(line, "```")) {  // a fenced block, to its closing fence
      std::vector<std::pair<int, std::string>> block;
      for (++i; i < lines.size() && !starts_with(lines[i], "```"); ++i) block.emplace_back(static_cast<int>(i + 1), lines[i]);
      add_shell_lines(block, &out);
    } else if (starts_with(line, "    ") && (i == 0 || trim(lines[i - 1]).empty())) {  // an indented block
      std::vector<std::pair<int, std::string>> block;
      for (; i < lines.size() && starts_with(lines[i], "    "); ++i) block.emplace_back(static_cast<int>(i + 1), lines[i].substr(4));
      add_indented_block(block, &out);
    } else if (starts_with(line, "| `")) {
      const std::string code = first_cell_code(line);
      if (starts_with(code, "build/") || starts_with(code, "scripts/") || starts_with(code, "bench/") || starts_with(code, "--"))
        out.push_back(ReadmeCommand{ReadmeCommand::kTableRow, program_key(code), code, {}, static_cast<int>(i + 1)});
    }
  }
  return out;
}

std::vector<std::string> options_named(const std::string& command_line) {
  static const std::regex option(R"((^|[\s(\[|])(--?[A-Za-z][A-Za-z0-9-]*))");
  std::vector<std::string> out;
  for (std::sregex_iterator it(command_line.begin(), command_line.end(), option), end; it != end; ++it) out.push_back((*it)[2]);
  return out;
}

bool help_names(const std::string& help, const std::string& option) {
  const auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  for (size_t at = help.find(option); at != std::string::npos; at = help.find(option, at + 1)) {
    const bool starts = at == 0 || !word_char(help[at - 1]);
    const bool ends = at + option.size() == help.size() || !word_char(help[at + option.size()]);
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace specd::test
