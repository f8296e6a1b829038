// libFuzzer target for the chat template interpreter: any bytes, parsed as a template and rendered
// with a fixed conversation, must give text or a named error (UNSUPPORTED, INVALID_ARG, LIMIT) —
// never a crash, a hang, unbounded memory or an exception.
#include "chat/chat_template.h"

#include <specd/error.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

const nlohmann::json& context() {
  static const nlohmann::json ctx = {
      {"messages",
       nlohmann::json::array({{{"role", "system"}, {"content", "sys"}},
                              {{"role", "user"}, {"content", "Hi \"there\" 😀"}},
                              {{"role", "assistant"},
                               {"content", ""},
                               {"tool_calls", nlohmann::json::array({{{"function", {{"name", "f"}, {"arguments", {{"a", 1}}}}}}})}},
                              {{"role", "tool"}, {"content", "{\"r\": 2.5}"}}})},
      {"tools", nlohmann::json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}}})},
      {"add_generation_prompt", true},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"}};
  return ctx;
}

bool named(const specd::Error& e) {
  return (e.code == SPECD_E_UNSUPPORTED || e.code == SPECD_E_INVALID_ARG || e.code == SPECD_E_LIMIT) && !(e.code != SPECD_E_INVALID_ARG && e.message.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  auto tpl = specd::chat::ChatTemplate::parse(source);
  if (!tpl) {
    if (!named(tpl.error())) std::abort();
    return 0;
  }
  std::tm now{};
  now.tm_year = 124;
  now.tm_mday = 1;
  auto out = tpl->render(context(), now);
  if (!out && !named(out.error())) std::abort();
  return 0;
}
