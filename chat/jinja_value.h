// The values a Jinja template computes with: Python's types as jinja2 sees them (Undefined, None, bool,
// int, float, str, list, dict, callables), with Python's truthiness, equality, ordering and str()/repr().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace specd::chat::jinja {

// How the interpreter reports a failed template. It is thrown only inside chat/ and caught in
// chat_template.cpp, the one place that turns it into a specd::Error (code = a SPECD_E_* value).
struct Failure : std::runtime_error {
  Failure(int code_, int line_, const std::string& what) : std::runtime_error(what), code(code_), line(line_) {}
  int code;
  int line;  // 0 when not known yet; the evaluator fills in the line of the node being evaluated
};
[[noreturn]] void fail(int code, const std::string& message, int line = 0);
[[noreturn]] void fail_type(const std::string& message);  // SPECD_E_INVALID_ARG: Python's TypeError and friends

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Callable;

// Arguments of a call: positional then keyword, as written.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

// Which Python sequence a List value is: they print, compare and serialize differently
// (map/select/... filters give generators, which print with an address and have no len()).
enum class Seq : uint8_t { List, Tuple, Generator, DictKeys, DictValues, DictItems };

struct Value {
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Callable };
  Kind kind = Kind::Undefined;
  Seq seq = Seq::List;  // for a List
  // For a String: markupsafe's Markup (from |safe). `+` with a plain str HTML-escapes the plain
  // side, as Markup.__add__ does; HF's templates meet it through `'...'|safe + text`.
  bool markup = false;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                          // String; for Undefined, the name that was missing (for messages)
  std::shared_ptr<List> list;             // List: shared like a Python list reference
  std::shared_ptr<Dict> dict;             // Dict (and namespace())
  std::shared_ptr<const Callable> fn;     // Callable

  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value real(double v);
  static Value str(std::string v);
  static Value make_list(List items = {}, Seq seq = Seq::List);
  static Value make_dict();
  static Value callable(std::string name, std::function<Value(Args&)> call);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_list() const { return kind == Kind::List; }
  // A list or tuple: has len(), items by index and a JSON form (generators and dict views do not).
  bool is_sequence() const { return kind == Kind::List && (seq == Seq::List || seq == Seq::Tuple); }
  bool is_dict() const { return kind == Kind::Dict; }
};

// A Python dict with string keys in insertion order (JSON objects and dict literals need no other keys).
// A literal may instead have only int keys ({0: 0, 512: 128}): int_keys, each key held in decimal.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // made by namespace(): the only dict `{% set ns.x = ... %}` may change
  bool int_keys = false;
  bool opaque = false;  // the `loop` object: attributes only (Python prints <LoopContext ...>)
  const Value* find(std::string_view key) const;  // a str key (never matches an int key)
  const Value* find(const Value& key) const;      // a str or int key, as Python's d[key]
  Value key(const std::string& k) const;          // the key as the template sees it (str or int)
  void set(const std::string& key, Value v);
};

struct Callable {
  std::string name;
  std::function<Value(Args&)> call;  // throws Failure
};

bool truthy(const Value& v);
// The depth arguments bound recursion into nested values (SPECD_E_LIMIT past kMaxValueDepth).
inline constexpr int kMaxValueDepth = 256;
void check_depth(int depth);
bool equals(const Value& a, const Value& b, int depth = 0);
// Python's a < b for numbers, strings and lists; TypeError (Failure) for other pairs.
bool less(const Value& a, const Value& b, int depth = 0);
// Python's str(): strings as they are, Undefined as "", everything else as repr().
std::string to_str(const Value& v);
std::string repr(const Value& v, int depth = 0);
std::string py_float_repr(double d);
double as_double(const Value& v);  // for an Int, Float or Bool
const char* type_name(const Value& v);  // Python's type name, for messages

// JSON (the render context) into values: objects keep nlohmann's key order.
Value from_json(const nlohmann::json& j, int depth = 0);
// Python's hash() succeeds: not a list, dict or dict view, nor a tuple holding one.
bool hashable(const Value& v, int depth = 0);
// Whether v is d or holds it (a namespace stored into itself would make a reference cycle).
bool holds(const Value& v, const Dict* d, int depth = 0);

}  // namespace specd::chat::jinja
