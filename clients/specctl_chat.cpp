// The chat loop: commands, turns, Ctrl-C handling, the per-turn figures.
#include "clients/specctl_chat.h"

#include "clients/specctl_chat_input.h"
#include "clients/specctl_stream.h"
#include "cli/generation_options.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <sstream>
#include <unistd.h>

namespace specd::specctl {
namespace {

using client::ChatMessage;
using client::GenParams;
using client::GenResult;

constexpr const char* kHelp =
    "/help                 this text\n"
    "/reset                forget the conversation (the --system text stays)\n"
    "/decoder NAME [K=V]…  decode the next turns with NAME and these options\n"
    "/exit                 leave (also Ctrl-D, or Ctrl-C at the prompt)\n"
    "Ctrl-C while the model writes stops that answer. A line starting with // sends it with one /.\n";

// "[42 tokens, 118.3 tok/s, TPF 1.00, prompt 35 tokens, stop]"
std::string figures(const GenResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "[%d tokens, %.1f tok/s, TPF %.2f, prompt %d tokens, %s]", r.generated_tokens,
                r.decode_tok_s, r.tokens_per_forward, r.prompt_tokens, r.finish_reason_name.c_str());
  return buf;
}

nlohmann::json turn_json(const GenResult& r) {
  return {{"role", "assistant"},
          {"content", r.text},
          {"finish_reason", r.finish_reason_name},
          {"usage",
           {{"prompt_tokens", r.prompt_tokens}, {"generated_tokens", r.generated_tokens}, {"forwards", r.forwards},
            {"tokens_per_forward", r.tokens_per_forward}, {"decode_tok_s", r.decode_tok_s}, {"ttft_ms", r.ttft_ms}}},
          {"run_id", r.run_id}};
}

class Chat {
 public:
  Chat(client::Client& c, const Args& a, GenParams base)
      : c_(c), base_(std::move(base)), system_(a.cli.str("system")), json_(a.cli.has("json")),
        tty_(::isatty(STDIN_FILENO) != 0) {
    reset();
  }

  // Finds the model the turns run on and says how its conversation is rendered.
  bool start() {
    const client::Status s = c_.status();
    const client::ModelStatus* model = nullptr;
    for (const auto& m : s.models)
      if (base_.model.empty() ? m.is_default : m.name == base_.model) model = &m;
    if (!model && !base_.model.empty()) {
      std::fprintf(stderr, "specctl: model '%s' is not loaded (specctl models lists them)\n", base_.model.c_str());
      return false;
    }
    const std::string name = model ? model->name : "the default model";
    if (model && !model->chat_template)
      std::fprintf(stderr, "specctl: %s has no chat template: plain continuation (the turns are joined as text)\n",
                   name.c_str());
    if (tty_) std::fprintf(stderr, "chatting with %s; /help lists the commands\n", name.c_str());
    return true;
  }

  int loop() {
    LineReader in(STDIN_FILENO);
    std::string line;
    bool last_was_ctrl_c = false;
    for (;;) {
      if (tty_) std::fputs("> ", stderr);  // stdout holds only the answers, also when it is redirected
      const LineReader::Got got = in.next(&line);
      if (got == LineReader::Got::End) break;
      if (got == LineReader::Got::Interrupted) {
        g_interrupted = 0;
        if (last_was_ctrl_c || !tty_) break;
        std::fputs("\n(Ctrl-C again or Ctrl-D to leave)\n", stderr);
        last_was_ctrl_c = true;
        continue;
      }
      last_was_ctrl_c = false;
      if (line.empty()) continue;
      if (line[0] == '/' && line.rfind("//", 0) != 0) {
        if (!command(line)) break;
        continue;
      }
      last_was_ctrl_c = turn(line[0] == '/' ? line.substr(1) : line);
    }
    if (tty_) std::fputs("\n", stderr);
    return 0;
  }

 private:
  void reset() {
    messages_.clear();
    if (!system_.empty()) messages_.push_back(ChatMessage{"system", system_});
  }

  // A slash command; false for /exit.
  bool command(const std::string& line) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    if (name == "/exit" || name == "/quit") return false;
    if (name == "/help") {
      std::fputs(kHelp, stderr);
    } else if (name == "/reset") {
      reset();
      std::fputs("(conversation reset)\n", stderr);
    } else if (name == "/decoder") {
      std::string decoder, item;
      std::vector<std::string> items;
      words >> decoder;
      while (words >> item) items.push_back(item);
      auto options = cli::decoder_options_json(items);
      if (decoder.empty() || !options) {
        std::fprintf(stderr, "specctl: %s\n", decoder.empty() ? "/decoder wants a name, e.g. /decoder ngram k=4"
                                                              : options.error().message.c_str());
      } else {
        base_.decoder = decoder;
        base_.decoder_options_json = *options == "{}" ? std::string() : std::move(options.value());
        std::fprintf(stderr, "(decoder %s%s%s)\n", decoder.c_str(), items.empty() ? "" : " ",
                     base_.decoder_options_json.c_str());
      }
    } else {
      std::fprintf(stderr, "specctl: unknown command %s (/help lists them)\n", name.c_str());
    }
    return true;
  }

  // One user message and its answer; true when Ctrl-C stopped it.
  bool turn(const std::string& text) {
    messages_.push_back(ChatMessage{"user", text});
    GenParams p = base_;
    p.messages = messages_;
    const Streamed t = stream_generation(c_, p, !json_);
    const bool cancelled = g_interrupted != 0;
    g_interrupted = 0;
    if (t.result) {
      // A stopped answer stays in the conversation as far as it was shown.
      messages_.push_back(ChatMessage{"assistant", t.result->text});
      if (json_) std::printf("%s\n", turn_json(*t.result).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      else std::fputs("\n", stdout);
      std::fflush(stdout);
      std::fprintf(stderr, "%s\n", figures(*t.result).c_str());
      if (t.result->finish_reason == SPECD_FINISH_CONTEXT) std::fputs("(the conversation fills the model's context: /reset starts over)\n", stderr);
    } else {
      messages_.pop_back();  // refused: the conversation stays as it was, to try again
      const bool too_long = SPECD_ERR_PRIMARY(t.rc) == SPECD_E_CONTEXT;
      std::fprintf(stderr, "specctl: %s%s\n", t.message.c_str(), too_long ? " (/reset starts over)" : "");
    }
    return cancelled;
  }

  client::Client& c_;
  GenParams base_;
  std::string system_;
  bool json_, tty_;
  std::vector<ChatMessage> messages_;
};

}  // namespace

int run_chat(client::Client& client, const Args& a, GenParams base) {
  install_sigint();
  Chat chat(client, a, std::move(base));
  if (!chat.start()) return 1;
  return chat.loop();
}

}  // namespace specd::specctl
