// Every real chat template in ../shared/data/templates, rendered for a set of conversations by
// specd's Jinja interpreter and by Python's jinja2 (tests/reference/render_chat_template.py):
// each pair must match byte for byte or both fail; templates we refuse must name the construct.
#include <doctest/doctest.h>

#include <specd/error.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/chat_template.h"
#include "tests/chat_oracle.h"
#include "tests/test_support.h"

using nlohmann::json;
using specd::chat::ChatTemplate;

namespace {

namespace fs = std::filesystem;

std::string templates_dir() {
  return specd::test::shared_dir() + "/data/templates";
}


json base(json messages, bool add_generation_prompt) {
  return {{"messages", std::move(messages)}, {"add_generation_prompt", add_generation_prompt}, {"bos_token", "<s>"},
          {"eos_token", "</s>"}};
}

// The conversations each template renders (named for the report).
std::vector<std::pair<std::string, json>> conversations() {
  std::vector<std::pair<std::string, json>> out;
  out.emplace_back("system+user, generation prompt",
                   base(json::array({{{"role", "system"}, {"content", "You are a helpful assistant."}},
                                     {{"role", "user"}, {"content", "Hello!"}}}),
                        true));
  out.emplace_back("multi-turn, no generation prompt",
                   base(json::array({{{"role", "user"}, {"content", "What is 2+2?"}},
                                     {{"role", "assistant"}, {"content", "4"}},
                                     {{"role", "user"}, {"content", "And 3+3?"}},
                                     {{"role", "assistant"}, {"content", "6"}}}),
                        false));
  out.emplace_back("user only", base(json::array({{{"role", "user"}, {"content", "Hi"}}}), true));
  json tool_call = {{"id", "call_1"},
                    {"type", "function"},
                    {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}, {"unit", "celsius"}}}}}};
  json tools = json::array({{{"type", "function"},
                             {"function",
                              {{"name", "get_weather"},
                               {"description", "Get the current weather in a city"},
                               {"parameters",
                                {{"type", "object"},
                                 {"properties",
                                  {{"city", {{"type", "string"}, {"description", "The city"}}},
                                   {"unit", {{"type", "string"}, {"enum", {"celsius", "fahrenheit"}}}}}},
                                 {"required", {"city"}}}}}}}});
  json with_tools = base(json::array({{{"role", "system"}, {"content", "You can call tools."}},
                                      {{"role", "user"}, {"content", "Weather in Paris?"}},
                                      {{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({tool_call})}},
                                      {{"role", "tool"}, {"tool_call_id", "call_1"}, {"name", "get_weather"},
                                       {"content", "{\"temperature\": 21}"}}}),
                         true);
  with_tools["tools"] = tools;
  out.emplace_back("tool call and result, tools list", with_tools);
  // As OpenAI clients send it: content null beside tool_calls, arguments as a JSON string.
  json openai_call = tool_call;
  openai_call["function"]["arguments"] = "{\"city\": \"Paris\"}";
  json openai = base(json::array({{{"role", "user"}, {"content", "Weather in Paris?"}},
                                  {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({openai_call})}},
                                  {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "21 C"}}}),
                     true);
  openai["tools"] = tools;
  out.emplace_back("OpenAI-style tool call (null content, string arguments)", openai);
  out.emplace_back("content as a list of text parts",
                   base(json::array({{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "Part one."}},
                                                                                  {{"type", "text"}, {"text", "Part two."}}})}}}),
                        true));
  out.emplace_back("unicode, quotes, newlines",
                   base(json::array({{{"role", "system"}, {"content", "Réponds en français. \"Quotes\" and 'apostrophes'."}},
                                     {{"role", "user"}, {"content", "Emoji 😀👍🏽 and 中文\nline two\n\n  indented\ttab"}},
                                     {{"role", "assistant"}, {"content", "Sure — «ok» \\ backslash {{ not jinja }}"}},
                                     {{"role", "user"}, {"content", "  trailing spaces  \n"}}}),
                        true));
  return out;
}

}  // namespace

TEST_CASE("chat templates: every real template renders as jinja2 does, or is refused by name") {
  const std::string dir = templates_dir();
  if (!fs::is_directory(dir)) {
    MESSAGE("skipped: no templates at " << dir);
    return;
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".jinja") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 70);
  const auto convs = conversations();
  std::vector<specd::test::OracleJob> jobs;
  for (const std::string& f : files)
    for (const auto& [name, ctx] : convs) jobs.push_back({f, ctx});
  const std::vector<specd::test::OracleResult> want = specd::test::run_oracle(jobs);
  std::tm now{};
  specd::test::oracle_now(&now);

  int identical_templates = 0, refused_templates = 0, pairs_identical = 0, pairs_both_failed = 0, pairs_refused = 0, wrong = 0;
  std::string table;
  size_t job = 0;
  for (const std::string& f : files) {
    const std::string name = fs::path(f).filename().string();
    auto tpl = ChatTemplate::parse(specd::test::read_text(f));
    if (!tpl) {
      CHECK_MESSAGE(tpl.error().code == SPECD_E_UNSUPPORTED, name << ": " << tpl.error().message);
      CHECK(tpl.error().message.find("chat template line ") == 0);
      ++refused_templates;
      pairs_refused += static_cast<int>(convs.size());
      table += "  refused  " + name + ": " + tpl.error().message + "\n";
      job += convs.size();
      continue;
    }
    int same = 0, refused = 0;
    std::string notes;
    for (const auto& [conv, ctx] : convs) {
      const specd::test::OracleResult& w = want[job++];
      auto got = tpl->render(ctx, now);
      if (w.ok && got && got.value() == w.text) {
        ++same;
        ++pairs_identical;
      } else if (!w.ok && !got) {
        ++same;
        ++pairs_both_failed;
      } else if (w.ok && !got && got.error().code == SPECD_E_UNSUPPORTED) {
        ++refused;
        ++pairs_refused;
        notes += "    refused at render (" + conv + "): " + got.error().message + "\n";
      } else {
        ++wrong;
        std::string detail = !got ? "we failed: " + got.error().message
                                  : !w.ok ? "jinja2 failed (" + w.text + ") but we rendered"
                                          : "different text";
        FAIL_CHECK(name << " / " << conv << ": " << detail << "\n--- jinja2:\n" << w.text << "\n--- specd:\n"
                        << (got ? got.value() : std::string()) << "\n---");
      }
    }
    if (same == static_cast<int>(convs.size())) ++identical_templates;
    char line[256];
    std::snprintf(line, sizeof line, "  %d/%zu    %s\n", same, convs.size(), name.c_str());
    table += line + notes;
  }
  MESSAGE("chat templates: " << files.size() << " templates x " << convs.size() << " conversations\n"
                             << table << "templates rendered identically for every conversation: " << identical_templates
                             << ", refused at parse: " << refused_templates << "\npairs identical: " << pairs_identical
                             << ", both failed: " << pairs_both_failed << ", refused: " << pairs_refused
                             << ", wrong: " << wrong);
  CHECK(wrong == 0);
}
