// The man pages (man/*.scd) cannot drift from the programs: each "; help: COMMAND" block of a page
// names exactly the options COMMAND's --help prints, and specd.toml(5) names every section and key
// of the packaged specd.toml. The pages also render with scdoc where it is installed.
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

using namespace specd::test;
namespace fs = std::filesystem;

namespace {


std::set<std::string> long_options(const std::string& text) {
  static const std::regex opt("--[a-z0-9][a-z0-9-]*");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), opt); it != std::sregex_iterator(); ++it)
    out.insert(it->str());
  return out;
}

// Where each program named in a "; help:" line is in the build tree.
std::string built_program(const std::string& name) {
  static const std::map<std::string, std::string> where = {
      {"specd", "daemon/specd"}, {"specctl", "clients/specctl"}, {"specd-convert", "tools/specd-convert"},
      {"specd-inflate", "tools/specd-inflate"}, {"specd-quantize", "tools/specd-quantize"},
      {"specd-add-mask", "tools/specd-add-mask"}, {"specd-random-model", "tools/specd-random-model"},
      {"specd-train", "tools/specd-train"}};
  const auto it = where.find(name);
  REQUIRE_MESSAGE(it != where.end(), "no built program for '" << name << "'");
  return build_root() + "/" + it->second;
}

// "*word*": how scdoc marks a name in bold. Built by appending (GCC 12's -Wrestrict misfires on
// a string literal + std::string).
std::string bold(const std::string& word) {
  std::string out = "*";
  out += word;
  out += '*';
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) {
    if (!out.empty()) out += ' ';
    out += x;
  }
  return out;
}

}  // namespace

TEST_CASE("man pages: each help block names exactly the options its program's --help prints") {
  int blocks = 0;
  for (const auto& entry : fs::directory_iterator(source_root() + "/man")) {
    if (entry.path().extension() != ".scd") continue;
    std::istringstream in(read_text(entry.path().string()));
    std::string line, command, block;
    while (std::getline(in, line)) {
      if (line.rfind("; help: ", 0) == 0) {
        command = line.substr(8);
        block.clear();
      } else if (line == "; end-help" && !command.empty()) {
        const std::string program = command.substr(0, command.find(' '));
        std::string help;
        run_command(built_program(program) + command.substr(program.size()) + " 2>&1", &help);
        const auto in_help = long_options(help), in_page = long_options(block);
        CHECK_MESSAGE(in_help == in_page, entry.path().filename().string()
                                              << " [" << command << "]\n  --help: " << join(in_help)
                                              << "\n  page:   " << join(in_page));
        ++blocks;
        command.clear();
      } else if (!command.empty()) {
        block += line + "\n";
      }
    }
    CHECK_MESSAGE(command.empty(), entry.path().filename().string() << ": '; help: " << command << "' has no '; end-help'");
  }
  CHECK(blocks >= 10);
}

TEST_CASE("man pages: specd.toml(5) names every section and key of the packaged specd.toml") {
  const std::string page = read_text(source_root() + "/man/specd.toml.5.scd");
  std::istringstream in(read_text(source_root() + "/packaging/specd.toml.in"));
  static const std::regex section(R"(^\[([a-z_]+)\]\s*$)"), key(R"(^([a-z_]+)\s*=)");
  std::string line, current;
  int keys = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, section)) {
      current = m[1];
      CHECK_MESSAGE(page.find(bold("[" + current + "]")) != std::string::npos, "section [" << current << "] is not in the page");
    } else if (std::regex_search(line, m, key) && current != "models") {
      ++keys;
      CHECK_MESSAGE(page.find(bold(m[1].str())) != std::string::npos,
                    "key " << current << "." << m[1] << " is not in the page");
    }
  }
  CHECK(keys > 20);
}

TEST_CASE("man pages: every page renders with scdoc") {
  if (run_command("command -v scdoc >/dev/null 2>&1", nullptr) != 0) {
    MESSAGE("skipped: scdoc is not installed (scripts/setup.sh installs it)");
    return;
  }
  for (const auto& entry : fs::directory_iterator(source_root() + "/man")) {
    if (entry.path().extension() != ".scd") continue;
    std::string out;
    CHECK_MESSAGE(run_command("scdoc < " + entry.path().string() + " 2>&1 >/dev/null", &out) == 0,
                  entry.path().filename().string() << ": " << out);
  }
}
