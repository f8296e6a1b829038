// jinja2's tests (`x is defined`, `x is mapping`, `x is equalto y`, ...), with jinja2 3.1's answers
// for each Python type (Undefined is iterable and a sequence; a bool is a number).
#include <specd/error.h>

#include <string_view>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace specd::chat::jinja {

namespace {

constexpr std::string_view kTests[] = {
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number", "string",
    "mapping", "iterable", "sequence", "callable", "sameas", "in", "odd", "even", "divisibleby", "lower",
    "upper", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">",
    "ge", ">=", "filter", "test"};

const Value& need(const Args& a, const char* test) {
  if (a.pos.empty()) fail_type(std::string("test '") + test + "' needs an argument");
  return a.pos[0];
}

}  // namespace

bool is_known_test(std::string_view name) {
  for (std::string_view t : kTests)
    if (t == name) return true;
  return false;
}

bool apply_test(const std::string& n, const Value& v, Args& a) {
  using K = Value::Kind;
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "boolean") return v.kind == K::Bool;
  if (n == "false") return v.kind == K::Bool && !v.b;
  if (n == "true") return v.kind == K::Bool && v.b;
  if (n == "integer") return v.kind == K::Int;
  if (n == "float") return v.kind == K::Float;
  if (n == "number") return v.is_number();
  if (n == "string") return v.is_string();
  const bool plain_dict = v.is_dict() && !v.dict->is_namespace && !v.dict->opaque;
  if (n == "mapping") return plain_dict;
  if (n == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || plain_dict || (v.is_dict() && v.dict->opaque);
  if (n == "sequence") return v.is_undefined() || v.is_string() || v.is_sequence() || plain_dict;
  if (n == "callable") return v.kind == K::Callable || v.is_undefined();  // Undefined has __call__ (that fails)
  if (n == "sameas") {
    const Value& o = need(a, "sameas");
    if (v.kind != o.kind) return false;
    if (v.kind == K::None || v.kind == K::Undefined) return true;
    if (v.kind == K::Bool) return v.b == o.b;
    if (v.kind == K::List) return v.list == o.list;
    if (v.kind == K::Dict) return v.dict == o.dict;
    return equals(v, o);  // small ints and interned strings are identical in CPython; close enough
  }
  if (n == "in") return contains(need(a, "in"), v);
  // jinja2: value % 2 == 1, value % 2 == 0, value % num == 0, with Python's % (floats too).
  if (n == "odd") return equals(binary_op("%", v, Value::integer(2)), Value::integer(1));
  if (n == "even") return equals(binary_op("%", v, Value::integer(2)), Value::integer(0));
  if (n == "divisibleby") return equals(binary_op("%", v, need(a, "divisibleby")), Value::integer(0));
  if (n == "lower" || n == "upper") {  // str.islower()/isupper(): cased letters, all in that case
    const std::string s = to_str(v);
    return py_lower(s) != py_upper(s) && (n == "lower" ? py_lower(s) : py_upper(s)) == s;
  }
  if (n == "eq" || n == "equalto" || n == "==") return equals(v, need(a, "eq"));
  if (n == "ne" || n == "!=") return !equals(v, need(a, "ne"));
  if (n == "lt" || n == "lessthan" || n == "<") return less(v, need(a, "lt"));
  if (n == "le" || n == "<=") return less(v, need(a, "le")) || equals(v, a.pos[0]);
  if (n == "gt" || n == "greaterthan" || n == ">") return less(need(a, "gt"), v);
  if (n == "ge" || n == ">=") return less(need(a, "ge"), v) || equals(v, a.pos[0]);
  if (n == "filter") return v.is_string() && is_known_filter(v.s);
  if (n == "test") return v.is_string() && is_known_test(v.s);
  fail(SPECD_E_UNSUPPORTED, "unsupported test '" + n + "'");
}

}  // namespace specd::chat::jinja
