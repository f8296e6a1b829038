// Parsed chat templates, kept by their source text, so that a model's template is parsed once rather
// than on every chat request (HTTP or socket).
#pragma once

#include "chat/chat_template.h"
#include "kernels/result.h"

#include <cstdint>
#include <string_view>

namespace specd::daemon {

// The template parsed from source: the kept one when this source was parsed before, else parsed
// now and kept. Keyed by the text itself, so a model loaded anew (or another model with the same
// template) can never get a stale one. Holds at most 64 templates (then starts over). A source that
// does not parse is not kept: its error (chat::ChatTemplate::parse's) comes back every time.
// Thread-safe.
Result<chat::ChatTemplate> cached_chat_template(std::string_view source);

// How many times cached_chat_template() has parsed a source, for tests.
uint64_t chat_template_parses();

}  // namespace specd::daemon
