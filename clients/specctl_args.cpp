// specctl's argument parser: per-command option sets over the shared CliArgs convention.
#include "clients/specctl_args.h"

#include "cli/generation_options.h"

#include <specd/client.h>

#include <cstring>
#include <map>
#include <set>

namespace specd::specctl {
namespace {

// What each command accepts (options that take a value), besides --socket and --timeout-ms.
const std::map<std::string, std::set<std::string>>& command_options() {
  static const std::map<std::string, std::set<std::string>> table = [] {
    std::set<std::string> generate = cli::generation_option_names();
    generate.insert("model");
    // chat: generate's options but the prompt (the conversation is), and a system message.
    std::set<std::string> chat = generate;
    chat.erase("prompt");
    chat.erase("prompt-ids");
    chat.insert("system");
    return std::map<std::string, std::set<std::string>>{
        {"generate", generate},
        {"chat", chat},
        {"status", {}},
        {"runs", {"last", "decoder", "model", "since-ms"}},
        {"decoders", {}},
        {"models", {}},
    };
  }();
  return table;
}

// Flags (no value) per command, besides --json.
const std::map<std::string, std::set<std::string>>& command_flags() {
  static const std::map<std::string, std::set<std::string>> table = {{"generate", cli::generation_flag_names()},
                                                                                 {"chat", cli::generation_flag_names()}};
  return table;
}

const std::set<std::string> kGlobal = {"socket", "timeout-ms"};
const std::set<std::string> kGlobalFlags = {"json"};

// Every option of every command: the parser knows them all, then the command's set is checked, so
// an option of another command is named as not for this one.
std::set<std::string> union_of(const std::set<std::string>& global,
                               const std::map<std::string, std::set<std::string>>& table) {
  std::set<std::string> all = global;
  for (const auto& [command, names] : table) all.insert(names.begin(), names.end());
  return all;
}

Error usage(const std::string& what) { return Error{SPECD_E_INVALID_ARG, what}; }

// Refuses an option of the table's that is neither global nor the command's.
Status check_command_options(const Args& args, const std::set<std::string>& global,
                             const std::map<std::string, std::set<std::string>>& table) {
  const auto own = table.find(args.command);
  for (const std::string& name : union_of(global, table)) {
    if (args.cli.has(name) && !global.count(name) && (own == table.end() || !own->second.count(name)))
      return usage("option --" + name + " is not an option of '" + args.command + "'");
  }
  return {};
}

}  // namespace

const char* usage_text() {
  return "usage: specctl [--socket PATH] [--timeout-ms MS] [--json] COMMAND [OPTIONS]\n"
         "  generate  -p TEXT | -p - (stdin) | --prompt-ids 1,403,...  [-m MODEL] [--decoder NAME]\n"
         "            [--decoder-opt K=V]... [-n N] [--temperature T] [--top-k K] [--top-p P]\n"
         "            [--min-p P] [--seed S] [--stop TEXT]... [--keep-stop]\n"
         "            stream text (--json: one JSON object); options as `specd generate --help`\n"
         "  chat      [-m MODEL] [--system TEXT] [--decoder NAME] [--decoder-opt K=V]... [-n N]\n"
         "            [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--stop TEXT]...\n"
         "            [--keep-stop]   a conversation: one message per line, /help for commands\n"
         "            (--json: one JSON object per answer)\n"
         "  status                                            the daemon's models, decoders, queue, memory\n"
         "  runs      [--last N] [--decoder X] [--model Y] [--since-ms UNIX_MS]   the run log, newest first\n"
         "  decoders                                          the loaded decoder plugins\n"
         "  models                                            the loaded models: architecture, parameters,\n"
         "                                                    weight types, context, file, device\n"
         "  -h, --help  this text;  --version  the version\n"
         "The socket is --socket, else $SPECD_SOCKET, else this user's own daemon's if there\n"
         "($XDG_RUNTIME_DIR/specd/specd.sock; without $XDG_RUNTIME_DIR, $XDG_STATE_HOME/specd/specd.sock,\n"
         "by default ~/.local/state/specd/specd.sock), else " SPECD_DEFAULT_SOCKET ".\n"
         "With --json every answer, errors included, is one JSON object on stdout.\n"
         "Exit status: 0 ok, 1 the request failed, 2 a bad command line or request,\n"
         "             3 cannot reach the daemon (not running, no answer),\n"
         "             4 access denied (the socket's permissions or the daemon's [access] lists).\n";
}

bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i)
    if (std::strcmp(argv[i], "--json") == 0) return true;
  return false;
}

Result<Args> parse_args(int argc, char** argv) {
  auto cli = cli::CliArgs::parse(argc, argv, union_of(kGlobal, command_options()),
                                    union_of(kGlobalFlags, command_flags()), true);
  if (!cli) return cli.error();
  Args args{"", std::move(cli.value())};
  if (args.cli.has("help") || args.cli.has("version")) return args;
  const auto& positional = args.cli.positional();
  if (positional.empty()) return usage("no command given");
  if (positional.size() > 1) return usage("unexpected argument '" + positional[1] + "'");
  args.command = positional[0];
  if (!command_options().count(args.command)) return usage("unknown command '" + args.command + "'");
  SPECD_TRY(check_command_options(args, kGlobal, command_options()));
  SPECD_TRY(check_command_options(args, kGlobalFlags, command_flags()));
  return args;
}

}  // namespace specd::specctl
