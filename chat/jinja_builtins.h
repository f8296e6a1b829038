// The filters, tests and str/dict/list methods templates may use, and Python's attribute and item
// lookup on values. Every function throws Failure (SPECD_E_INVALID_ARG for a Python TypeError/
// ValueError or an undefined value used, SPECD_E_LIMIT when a result would pass kMaxStringBytes).
#pragma once

#include <string>
#include <string_view>

#include "chat/jinja_value.h"

namespace specd::chat::jinja {

// The most bytes one string value or the rendered output may hold (a hostile template can double
// a string in a loop).
inline constexpr size_t kMaxStringBytes = size_t{16} << 20;
void check_size(const std::string& s);

bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);
Value apply_filter(const std::string& name, const Value& subject, Args& args);
bool apply_test(const std::string& name, const Value& subject, Args& args);

// obj.name: a dict's methods first, then its items; a str's and list's methods; else Undefined.
Value get_attr(const Value& obj, const std::string& name);
// obj[key]: items first, then (for a string key) attributes; a missing item is Undefined.
Value get_item(const Value& obj, const Value& key);
// A bound method of a str, dict or list (a Callable), or Undefined when it has none of that name.
Value method(const Value& obj, const std::string& name);
// Python's iter(): a list's items, a dict's keys, a str's code points, nothing for Undefined.
List iterate(const Value& v);
// The positional-or-keyword argument `name` at position `pos` (for a Python-like signature), or `def`.
const Value& arg(const Args& args, size_t pos, const char* name, const Value& def);
// HF's tojson filter: json.dumps(v, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
// with those keywords (or positions) taken from args.
std::string to_json(const Value& v, const Args& args);

}  // namespace specd::chat::jinja
