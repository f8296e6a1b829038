// Chat prompts: the model's template with the context Hugging Face's apply_chat_template gives it
// (messages, tools, add_generation_prompt, bos_token, eos_token), as llama.cpp's server does.
#include "daemon/chat_prompt.h"

#include "chat/chat_template.h"
#include "daemon/chat_template_cache.h"

namespace specd::daemon {

Result<std::string> chat_prompt(const engine::Model& model, const nlohmann::json& messages, const nlohmann::json& tools) {
  const engine::Tokenizer& tok = model.tokenizer();
  const auto source = model.file().get_string("tokenizer.chat_template");
  // Parsed once per template, not per request (daemon/chat_template_cache.h).
  auto tmpl = cached_chat_template(source ? *source : chat::default_template_source());
  if (!tmpl) return make_error(tmpl.error().code, "the model's chat template: %s", tmpl.error().message.c_str());
  auto text_of = [&](int32_t id) { return id >= 0 && id < tok.vocab_size() ? tok.token_text(id) : std::string(); };
  const std::string bos = text_of(tok.bos()), eos = text_of(tok.eos());
  nlohmann::json context{{"messages", messages}, {"add_generation_prompt", true}, {"bos_token", bos}, {"eos_token", eos}};
  if (!tools.is_null()) context["tools"] = tools;
  auto text = tmpl->render(context);
  if (!text) return make_error(text.error().code, "the model's chat template: %s", text.error().message.c_str());
  // The tokenizer adds BOS itself where the model says so; a template that writes it too would double it.
  std::string prompt = std::move(text.value());
  if (tok.add_bos_token() && !bos.empty() && prompt.rfind(bos, 0) == 0) prompt.erase(0, bos.size());
  return prompt;
}

}  // namespace specd::daemon
