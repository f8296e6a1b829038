// Python semantics of the interpreter's values: construction, truthiness, ==, <, JSON input.
#include "chat/jinja_value.h"

#include <specd/error.h>

#include <cmath>

namespace specd::chat::jinja {

void fail(int code, const std::string& message, int line) { throw Failure(code, line, message); }
void fail_type(const std::string& message) { throw Failure(SPECD_E_INVALID_ARG, 0, message); }

Value Value::undefined(std::string name) {
  Value v;
  v.s = std::move(name);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::Bool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}
Value Value::real(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}
Value Value::str(std::string x) {
  Value v;
  v.kind = Kind::String;
  v.s = std::move(x);
  return v;
}
Value Value::make_list(List items, Seq seq) {
  Value v;
  v.kind = Kind::List;
  v.seq = seq;
  v.list = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::make_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::callable(std::string name, std::function<Value(Args&)> call) {
  Value v;
  v.kind = Kind::Callable;
  v.fn = std::make_shared<const Callable>(Callable{std::move(name), std::move(call)});
  return v;
}

const Value* Dict::find(std::string_view key) const {
  if (int_keys) return nullptr;
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.s));
  if (!int_keys || key.kind != Value::Kind::Int) return nullptr;
  const std::string k = std::to_string(key.i);
  for (const auto& [name, v] : items)
    if (name == k) return &v;
  return nullptr;
}

Value Dict::key(const std::string& k) const { return int_keys ? Value::integer(std::stoll(k)) : Value::str(k); }

void Dict::set(const std::string& key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return false;
    case Value::Kind::Bool: return v.b;
    case Value::Kind::Int: return v.i != 0;
    case Value::Kind::Float: return v.f != 0.0;
    case Value::Kind::String: return !v.s.empty();
    case Value::Kind::List: return v.seq == Seq::Generator || !v.list->empty();
    case Value::Kind::Dict: return v.dict->is_namespace || v.dict->opaque || !v.dict->items.empty();
    case Value::Kind::Callable: return true;
  }
  return false;
}

double as_double(const Value& v) {
  if (v.kind == Value::Kind::Float) return v.f;
  if (v.kind == Value::Kind::Int) return static_cast<double>(v.i);
  return v.b ? 1.0 : 0.0;
}

void check_depth(int depth) {
  if (depth > kMaxValueDepth) fail(SPECD_E_LIMIT, "chat template: values nest deeper than 256");
}

bool equals(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.kind != Value::Kind::Float && b.kind != Value::Kind::Float) {
      const int64_t x = a.kind == Value::Kind::Int ? a.i : a.b, y = b.kind == Value::Kind::Int ? b.i : b.b;
      return x == y;
    }
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  if (a.kind == Value::Kind::List && (a.seq != b.seq || a.seq == Seq::Generator)) return a.seq == b.seq && a.list == b.list;
  switch (a.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return true;
    case Value::Kind::String: return a.s == b.s;
    case Value::Kind::List: {
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equals((*a.list)[k], (*b.list)[k], depth + 1)) return false;
      return true;
    }
    case Value::Kind::Dict: {
      if (a.dict->is_namespace || b.dict->is_namespace || a.dict->opaque || b.dict->opaque) return a.dict == b.dict;
      if (a.dict->items.size() != b.dict->items.size() || a.dict->int_keys != b.dict->int_keys) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* w = b.dict->find(a.dict->key(k));
        if (!w || !equals(v, *w, depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::Callable: return a.fn == b.fn;
    default: return false;
  }
}

bool less(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::Int && b.kind == Value::Kind::Int) return a.i < b.i;
    return as_double(a) < as_double(b);
  }
  if (a.is_string() && b.is_string()) return a.s < b.s;  // UTF-8 byte order is code point order
  if (a.is_sequence() && b.is_sequence() && a.seq == b.seq) {
    const List &x = *a.list, &y = *b.list;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equals(x[k], y[k], depth + 1)) continue;
      return less(x[k], y[k], depth + 1);
    }
    return x.size() < y.size();
  }
  std::string msg = "'<' not supported between instances of '";
  msg.append(type_name(a)).append("' and '").append(type_name(b)).append("'");
  fail_type(msg);
}

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return "Undefined";
    case Value::Kind::None: return "NoneType";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::List:
      switch (v.seq) {
        case Seq::List: return "list";
        case Seq::Tuple: return "tuple";
        case Seq::Generator: return "generator";
        case Seq::DictKeys: return "dict_keys";
        case Seq::DictValues: return "dict_values";
        case Seq::DictItems: return "dict_items";
      }
      return "list";
    case Value::Kind::Dict: return v.dict->is_namespace ? "Namespace" : v.dict->opaque ? "LoopContext" : "dict";
    case Value::Kind::Callable: return "function";
  }
  return "object";
}

Value from_json(const nlohmann::json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      // Python keeps such an int exact; a double would print other digits.
      if (u > static_cast<uint64_t>(INT64_MAX)) fail(SPECD_E_UNSUPPORTED, "unsupported: an integer above 2^63-1 in the context");
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value::real(j.get<double>());
    case nlohmann::json::value_t::string: return Value::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x, depth + 1));
      return Value::make_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value d = Value::make_dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.dict->items.emplace_back(it.key(), from_json(it.value(), depth + 1));
      return d;
    }
    default: return Value::none();  // binary / discarded: not produced by a JSON parser
  }
}

bool hashable(const Value& v, int depth) {
  check_depth(depth);
  if (v.is_dict()) return v.dict->is_namespace || v.dict->opaque;
  if (!v.is_list() || v.seq == Seq::Generator) return true;
  if (v.seq != Seq::Tuple) return false;
  for (const Value& x : *v.list)
    if (!hashable(x, depth + 1)) return false;
  return true;
}

bool holds(const Value& v, const Dict* d, int depth) {
  check_depth(depth);
  if (v.is_dict()) {
    if (v.dict.get() == d) return true;
    for (const auto& [k, x] : v.dict->items)
      if (holds(x, d, depth + 1)) return true;
  }
  if (v.is_list())
    for (const Value& x : *v.list)
      if (holds(x, d, depth + 1)) return true;
  return false;
}

}  // namespace specd::chat::jinja
