// The chat-template cache: a template is parsed once however many chats render it, and every chat
// renders the same prompt from the kept parse as from a fresh one.
#include "chat/chat_template.h"
#include "daemon/chat_prompt.h"
#include "daemon/chat_template_cache.h"
#include "engine/model.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace specd;
using json = nlohmann::json;

TEST_CASE("chat prompts: a model's template is parsed once for every chat, and renders the same each time") {
  auto model = engine::Model::load(test::model_path("stories260K.gguf"));  // no template: the ChatML default
  REQUIRE(model.has_value());
  const json messages = json::array({{{"role", "user"}, {"content", "Tell me a story"}}});
  auto first = daemon::chat_prompt(**model, messages, nullptr);
  REQUIRE_MESSAGE(first.has_value(), first.error().message);
  const uint64_t parses = daemon::chat_template_parses();
  for (int chat = 0; chat < 5; ++chat) {
    auto again = daemon::chat_prompt(**model, messages, nullptr);
    REQUIRE(again.has_value());
    CHECK(*again == *first);
  }
  CHECK(daemon::chat_template_parses() == parses);  // the first chat's parse served the other five
  // The kept parse renders what a fresh one does.
  auto fresh = chat::ChatTemplate::parse(chat::default_template_source());
  REQUIRE(fresh.has_value());
  auto rendered = fresh->render(json{{"messages", messages}, {"add_generation_prompt", true}, {"bos_token", ""}, {"eos_token", ""}});
  REQUIRE(rendered.has_value());
  CHECK(rendered->find("<|im_start|>user\nTell me a story<|im_end|>") != std::string::npos);
  CHECK(first->find("<|im_start|>user\nTell me a story<|im_end|>") != std::string::npos);
}

TEST_CASE("chat template cache: keyed by the source text; a source that does not parse is refused every time") {
  const std::string source = "{{ 'cache test ' ~ messages | length }}";
  const uint64_t before = daemon::chat_template_parses();
  auto a = daemon::cached_chat_template(source);
  auto b = daemon::cached_chat_template(source);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(daemon::chat_template_parses() == before + 1);
  CHECK(b->render(json{{"messages", json::array({1, 2})}}).value() == "cache test 2");
  auto other = daemon::cached_chat_template(source + " ");  // another text is another template
  REQUIRE(other.has_value());
  CHECK(daemon::chat_template_parses() == before + 2);
  const auto refused = chat::ChatTemplate::parse("{% if %}");
  REQUIRE_FALSE(refused.has_value());
  for (int i = 0; i < 2; ++i) {
    auto bad = daemon::cached_chat_template("{% if %}");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == refused.error().code);  // the parser's own error, each time
    CHECK(bad.error().message == refused.error().message);
  }
  CHECK(daemon::chat_template_parses() == before + 4);
}
