// A socket Generate's conversation (protocol.fbs ChatMessage) → the prompt the engine tokenizes:
// the model's chat template when it has one, else the plain text of the conversation.
#pragma once

#include "engine/model.h"
#include "kernels/result.h"

#include <flatbuffers/flatbuffers.h>

#include <string>

namespace specd::wire {
struct ChatMessage;
}

namespace specd::daemon {

using WireMessages = flatbuffers::Vector<flatbuffers::Offset<wire::ChatMessage>>;

struct ChatPromptText {
  std::string text;
  bool parse_special = false;  // a rendered template's markers are special tokens; plain text has none
};

// The prompt for messages on model. With tokenizer.chat_template: chat_prompt() (add_generation_prompt,
// markers as special tokens). Without: the contents as one document, tokenized as ordinary text —
// an assistant turn follows the text before it directly (it continued it), any other turn starts a
// new line — since a base model has no turns to mark (ChatML's markers would be noise to it).
// Errors: those of chat_prompt() (SPECD_E_UNSUPPORTED, SPECD_E_INVALID_ARG).
Result<ChatPromptText> conversation_prompt(const engine::Model& model, const WireMessages& messages);

}  // namespace specd::daemon
