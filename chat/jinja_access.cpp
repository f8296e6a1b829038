// Python's attribute and item lookup as jinja2 does them (`a.b` tries getattr then a["b"]; `a[b]`
// tries the item then getattr), iteration, and keyword-or-positional argument lookup.
#include <specd/error.h>

#include "chat/jinja_builtins.h"
#include "chat/jinja_text.h"

namespace specd::chat::jinja {

void check_size(const std::string& s) {
  if (s.size() > kMaxStringBytes) fail(SPECD_E_LIMIT, "chat template: output or a string passed 16 MiB");
}

namespace {

[[noreturn]] void undefined_used(const Value& v) {
  fail_type("'" + (v.s.empty() ? std::string("undefined") : v.s) + "' is undefined");
}

bool is_dict_attribute(const std::string& name) {
  static const char* const kNames[] = {"get", "items", "keys", "values", "pop", "popitem", "setdefault",
                                       "update", "clear", "copy", "fromkeys"};
  for (const char* n : kNames)
    if (name == n) return true;
  return false;
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Value::Kind::Undefined: undefined_used(obj);
    case Value::Kind::Dict: {
      if (!obj.dict->is_namespace && !obj.dict->opaque && is_dict_attribute(name)) return method(obj, name);
      const Value* v = obj.dict->find(std::string_view(name));
      return v ? *v : Value::undefined(name);
    }
    case Value::Kind::String:
    case Value::Kind::List: return method(obj, name);
    default: return Value::undefined(name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_used(obj);
  const bool int_key = key.kind == Value::Kind::Int || key.kind == Value::Kind::Bool;
  const int64_t ik = key.kind == Value::Kind::Int ? key.i : key.b;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict->find(key)) return *v;
  } else if (obj.is_sequence() && int_key) {
    const int64_t n = static_cast<int64_t>(obj.list->size());
    const int64_t k = ik < 0 ? ik + n : ik;
    if (k >= 0 && k < n) return (*obj.list)[static_cast<size_t>(k)];
  } else if (obj.is_string() && int_key) {
    const std::vector<std::string> cps = code_points(obj.s);
    const int64_t n = static_cast<int64_t>(cps.size());
    const int64_t k = ik < 0 ? ik + n : ik;
    if (k >= 0 && k < n) return Value::str(cps[static_cast<size_t>(k)]);
  }
  if (key.is_string() && (obj.is_dict() || obj.is_list() || obj.is_string()) && !(obj.is_dict() && obj.dict->is_namespace))
    return method(obj, key.s);
  return Value::undefined(key.is_string() ? key.s : repr(key));
}

List iterate(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return *v.list;
    case Value::Kind::Dict: {
      if (v.dict->is_namespace || v.dict->opaque) break;
      List keys;
      for (const auto& [k, x] : v.dict->items) keys.push_back(v.dict->key(k));
      return keys;
    }
    case Value::Kind::String: {
      List out;
      for (std::string& cp : code_points(v.s)) out.push_back(Value::str(std::move(cp)));
      return out;
    }
    default: break;
  }
  fail_type(std::string("'") + type_name(v) + "' object is not iterable");
}

const Value& arg(const Args& args, size_t pos, const char* name, const Value& def) {
  for (const auto& [k, v] : args.kw)
    if (k == name) return v;
  return pos < args.pos.size() ? args.pos[pos] : def;
}

}  // namespace specd::chat::jinja
