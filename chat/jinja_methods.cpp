// The str, dict and list methods templates call (bound as Callables), with the immutable sandbox's
// rule that methods changing a list or dict in place are refused.
#include <specd/error.h>

#include "chat/jinja_builtins.h"
#include "chat/jinja_text.h"

namespace specd::chat::jinja {

namespace {

const Value kNone = Value::none();

const std::string* opt_str(const Value& v, const char* what) {
  if (v.is_none()) return nullptr;
  if (!v.is_string()) fail_type(std::string(what) + " arg must be None or str");
  return &v.s;
}

int64_t int_arg(const Value& v, int64_t def) {
  if (v.is_none()) return def;
  if (v.kind != Value::Kind::Int) fail_type("an integer is required");
  return v.i;
}

// str.startswith / endswith: a prefix or a tuple of them.
bool affix(const std::string& s, const Value& a, bool start) {
  auto one = [&](const Value& x) {
    if (!x.is_string()) fail_type("startswith/endswith arg must be str or a tuple of str");
    if (x.s.size() > s.size()) return false;
    return start ? s.compare(0, x.s.size(), x.s) == 0 : s.compare(s.size() - x.s.size(), x.s.size(), x.s) == 0;
  };
  if (a.is_list()) {
    for (const Value& x : *a.list)
      if (one(x)) return true;
    return false;
  }
  return one(a);
}

// str.format with {} / {0} / {name} fields; format specs and conversions are refused.
std::string format(const std::string& f, const Args& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    const char c = f[k];
    if ((c == '{' || c == '}') && k + 1 < f.size() && f[k + 1] == c) {
      out += c;
      ++k;
      continue;
    }
    if (c == '}') fail_type("Single '}' encountered in format string");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t e = f.find('}', k);
    if (e == std::string::npos) fail_type("Single '{' encountered in format string");
    const std::string field = f.substr(k + 1, e - k - 1);
    if (field.find_first_of(":!.[") != std::string::npos) fail(SPECD_E_UNSUPPORTED, "unsupported str.format field '{" + field + "}'");
    const Value* v = nullptr;
    if (field.empty() || (field.find_first_not_of("0123456789") == std::string::npos)) {
      const size_t idx = field.empty() ? auto_index++ : std::stoul(field);
      if (idx >= args.pos.size()) fail_type("Replacement index " + std::to_string(idx) + " out of range");
      v = &args.pos[idx];
    } else {
      for (const auto& [name, x] : args.kw)
        if (name == field) v = &x;
      if (!v) fail_type("KeyError: '" + field + "'");
    }
    out += to_str(*v);
    k = e;
  }
  return out;
}

Value str_method(const std::string& s, const std::string& name, Args& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const std::string* chars = opt_str(arg(a, 0, "chars", kNone), "strip");
    return Value::str(py_strip(s, name != "rstrip", name != "lstrip", chars));
  }
  if (name == "split") {
    const std::string* sep = opt_str(arg(a, 0, "sep", kNone), "split");
    if (sep && sep->empty()) fail_type("empty separator");
    List out;
    for (std::string& part : py_split(s, sep, int_arg(arg(a, 1, "maxsplit", kNone), -1))) out.push_back(Value::str(std::move(part)));
    return Value::make_list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    if (a.pos.empty()) fail_type(name + "() takes at least 1 argument");
    return Value::boolean(affix(s, a.pos[0], name == "startswith"));
  }
  if (name == "upper") return Value::str(py_upper(s));
  if (name == "lower") return Value::str(py_lower(s));
  if (name == "title") return Value::str(py_title(s));
  if (name == "capitalize") return Value::str(py_capitalize(s));
  if (name == "replace") {
    if (a.pos.size() < 2 || !a.pos[0].is_string() || !a.pos[1].is_string()) fail_type("replace() takes two str arguments");
    return Value::str(py_replace(s, a.pos[0].s, a.pos[1].s, int_arg(arg(a, 2, "count", kNone), -1)));
  }
  if (name == "format") return Value::str(format(s, a));
  if (name == "join") {
    if (a.pos.empty()) fail_type("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& x : iterate(a.pos[0])) {
      if (!x.is_string()) fail_type(std::string("sequence item: expected str instance, ") + type_name(x) + " found");
      if (!first) out += s;
      first = false;
      out += x.s;
      check_size(out);
    }
    return Value::str(std::move(out));
  }
  if (name == "find" || name == "count") {
    if (a.pos.empty() || !a.pos[0].is_string()) fail_type(name + "() takes a str argument");
    if (name == "find") {
      const size_t k = s.find(a.pos[0].s);
      return Value::integer(k == std::string::npos ? -1 : static_cast<int64_t>(code_point_count(s.substr(0, k))));
    }
    if (a.pos[0].s.empty()) return Value::integer(static_cast<int64_t>(code_point_count(s)) + 1);
    int64_t n = 0;
    for (size_t k = s.find(a.pos[0].s); k != std::string::npos; k = s.find(a.pos[0].s, k + a.pos[0].s.size())) ++n;
    return Value::integer(n);
  }
  List out;
  for (std::string& line : py_splitlines(s)) out.push_back(Value::str(std::move(line)));
  return Value::make_list(std::move(out));  // splitlines
}

Value dict_method(const Value& d, const std::string& name, Args& a) {
  if (name == "get") {
    if (a.pos.empty()) fail_type("get expected at least 1 argument, got 0");
    const Value* v = d.dict->find(a.pos[0]);
    return v ? *v : a.pos.size() > 1 ? a.pos[1] : Value::none();
  }
  if (name == "copy") {
    Value c = Value::make_dict();
    c.dict->items = d.dict->items;
    c.dict->int_keys = d.dict->int_keys;
    return c;
  }
  List out;
  for (const auto& [k, v] : d.dict->items) {
    if (name == "keys") out.push_back(d.dict->key(k));
    else if (name == "values") out.push_back(v);
    else out.push_back(Value::make_list({d.dict->key(k), v}, Seq::Tuple));  // items
  }
  return Value::make_list(std::move(out), name == "keys" ? Seq::DictKeys : name == "values" ? Seq::DictValues : Seq::DictItems);
}

bool is_one_of(const std::string& name, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (name == n) return true;
  return false;
}

}  // namespace

Value method(const Value& obj, const std::string& name) {
  const bool is_str = obj.is_string() && is_one_of(name, {"strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper",
                                                           "lower", "title", "capitalize", "replace", "format", "join", "find",
                                                           "count", "splitlines"});
  const bool is_dict = obj.is_dict() && is_one_of(name, {"get", "items", "keys", "values", "copy"});
  const bool is_mutator = (obj.is_dict() && is_one_of(name, {"pop", "popitem", "setdefault", "update", "clear"})) ||
                          (obj.is_list() && is_one_of(name, {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"}));
  if (is_mutator) {
    // jinja2's ImmutableSandboxedEnvironment makes these a SecurityError when called.
    return Value::callable(name, [name](Args&) -> Value {
      fail_type("access to attribute '" + name + "' of a list or dict is unsafe (immutable sandbox)");
    });
  }
  if (obj.is_sequence() && is_one_of(name, {"count", "index"})) {
    return Value::callable(name, [obj, name](Args& a) {
      if (a.pos.empty()) fail_type(name + "() takes exactly one argument");
      int64_t n = 0;
      for (size_t k = 0; k < obj.list->size(); ++k) {
        if (!equals((*obj.list)[k], a.pos[0])) continue;
        if (name == "index") return Value::integer(static_cast<int64_t>(k));
        ++n;
      }
      if (name == "index") fail_type("x not in list");
      return Value::integer(n);
    });
  }
  if (!is_str && !is_dict) return Value::undefined(name);
  return Value::callable(name, [obj, name, is_str](Args& a) { return is_str ? str_method(obj.s, name, a) : dict_method(obj, name, a); });
}

}  // namespace specd::chat::jinja
