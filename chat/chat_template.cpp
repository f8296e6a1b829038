// ChatTemplate: parse and render through the jinja interpreter, HF's globals, and the one place
// where the interpreter's Failure becomes a specd::Error.
#include "chat/chat_template.h"

#include <specd/error.h>

#include <new>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_parser.h"

namespace specd::chat {

using jinja::Args;
using jinja::Value;

namespace {

// jinja2's sandbox caps range() at MAX_RANGE items.
constexpr int64_t kMaxRange = 100000;

int64_t int_arg(const Value& v) {
  if (v.kind == Value::Kind::Int) return v.i;
  if (v.kind == Value::Kind::Bool) return v.b;
  jinja::fail_type(std::string("'") + jinja::type_name(v) + "' object cannot be interpreted as an integer");
}

Value range(Args& a) {
  if (a.pos.empty() || a.pos.size() > 3) jinja::fail_type("range expected 1 to 3 arguments");
  int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) {
    stop = int_arg(a.pos[0]);
  } else {
    start = int_arg(a.pos[0]);
    stop = int_arg(a.pos[1]);
    if (a.pos.size() == 3) step = int_arg(a.pos[2]);
  }
  if (step == 0) jinja::fail_type("range() arg 3 must not be zero");
  jinja::List out;
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) jinja::fail(SPECD_E_LIMIT, "chat template: range() too big (over 100000 items)");
    out.push_back(Value::integer(k));
  }
  return Value::make_list(std::move(out));
}

jinja::FramePtr make_globals(const nlohmann::json& context, const std::tm& now) {
  auto g = std::make_shared<jinja::Frame>();
  g->set("raise_exception", Value::callable("raise_exception", [](Args& a) -> Value {
           // The template's own message, without a line: the caller shows it to the client as is.
           throw jinja::Failure(SPECD_E_INVALID_ARG, -1, a.pos.empty() ? std::string() : jinja::to_str(a.pos[0]));
         }));
  g->set("strftime_now", Value::callable("strftime_now", [now](Args& a) {
           const std::string fmt = a.pos.empty() ? std::string() : jinja::to_str(a.pos[0]);
           char buf[512];
           const size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &now);
           if (n == 0 && !fmt.empty()) jinja::fail(SPECD_E_UNSUPPORTED, "unsupported strftime_now format");
           return Value::str(std::string(buf, n));
         }));
  g->set("namespace", Value::callable("namespace", [](Args& a) {
           Value ns = Value::make_dict();
           ns.dict->is_namespace = true;
           if (!a.pos.empty() && a.pos[0].is_dict() && !a.pos[0].dict->int_keys) ns.dict->items = a.pos[0].dict->items;
           for (auto& [k, v] : a.kw) ns.dict->set(k, v);
           return ns;
         }));
  g->set("range", Value::callable("range", range));
  g->set("dict", Value::callable("dict", [](Args& a) {
           Value d = Value::make_dict();
           for (auto& [k, v] : a.kw) d.dict->set(k, v);
           return d;
         }));
  if (context.is_object())
    for (auto it = context.begin(); it != context.end(); ++it) g->set(it.key(), jinja::from_json(it.value()));
  return g;
}

Error to_error(const jinja::Failure& f) { return Error{f.code, f.what()}; }

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  try {
    return ChatTemplate(jinja::parse_program(source));
  } catch (const jinja::Failure& f) {
    return to_error(f);
  } catch (const std::bad_alloc&) {
    return make_error(SPECD_E_NOMEM, "chat template: out of memory while parsing");
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  const std::time_t t = std::time(nullptr);
  std::tm now{};
  localtime_r(&t, &now);
  return render(context, now);
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context, const std::tm& now) const {
  if (!context.is_object()) return make_error(SPECD_E_INVALID_ARG, "chat template: the context must be a JSON object");
  try {
    jinja::Evaluator ev(make_globals(context, now));
    return ev.render(*program_);
  } catch (const jinja::Failure& f) {
    return to_error(f);
  } catch (const std::bad_alloc&) {
    return make_error(SPECD_E_NOMEM, "chat template: out of memory while rendering");
  }
}

std::string_view default_template_source() {
  // ChatML, as llama.cpp's fallback writes it.
  static constexpr std::string_view kChatML =
      "{%- for message in messages -%}\n"
      "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n"
      "{%- endfor -%}\n"
      "{%- if add_generation_prompt -%}\n"
      "{{- '<|im_start|>assistant\\n' -}}\n"
      "{%- endif -%}\n";
  return kChatML;
}

}  // namespace specd::chat
