// Socket chat prompts: ChatMessage tables → OpenAI-shaped messages for chat_prompt(), or plain text.
#include "daemon/chat_messages.h"

#include "daemon/chat_prompt.h"
#include "protocol_generated.h"

namespace specd::daemon {
namespace {

std::string str_of(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace

Result<ChatPromptText> conversation_prompt(const engine::Model& model, const WireMessages& messages) {
  ChatPromptText out;
  if (model.file().find("tokenizer.chat_template") == nullptr) {
    // An answer continues the text before it (that is what the model wrote); any other turn starts a line.
    for (const wire::ChatMessage* m : messages) {
      if (!out.text.empty() && str_of(m->role()) != "assistant") out.text += '\n';
      out.text += str_of(m->content());
    }
    return out;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const wire::ChatMessage* m : messages) list.push_back({{"role", str_of(m->role())}, {"content", str_of(m->content())}});
  auto text = chat_prompt(model, list, nullptr);
  if (!text) return text.error();
  out.text = std::move(text.value());
  out.parse_special = true;
  return out;
}

}  // namespace specd::daemon
