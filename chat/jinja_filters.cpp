// jinja2's builtin filters that chat templates use, plus HF's tojson (jinja_json.cpp). Each follows
// jinja2 3.1's filters.py: same defaults (case-insensitive sort/unique/min/max/dictsort), same
// handling of Undefined.
#include <specd/error.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace specd::chat::jinja {

namespace {

constexpr std::string_view kFilters[] = {
    "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "indent", "int", "items", "join",
    "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "safe",
    "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper"};

const Value kNone = Value::none();

// jinja2's title filter (not str.title()): split before runs of - whitespace ( { [ <, then each
// piece's first character upper-cased and the rest lower-cased.
std::string title_words(const std::string& s) {
  auto is_sep = [](char c) { return c == '-' || c == ' ' || (c >= '\t' && c <= '\r') || c == '(' || c == '{' || c == '[' || c == '<'; };
  std::string out;
  size_t k = 0;
  while (k < s.size()) {
    size_t e = k;
    const bool sep = is_sep(s[k]);
    while (e < s.size() && is_sep(s[e]) == sep) ++e;
    if (sep) {
      out.append(s, k, e - k);
    } else {
      const std::string first = code_points(s.substr(k, e - k)).front();
      out += py_upper(first) + py_lower(s.substr(k + first.size(), e - k - first.size()));
    }
    k = e;
  }
  return out;
}

Value as_markup(Value v, bool markup) {
  v.markup = markup;
  return v;
}
const Value kFalse = Value::boolean(false);
const Value kEmpty = Value::str("");

// jinja2's ignore_case: strings compare lower-cased unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  return v.is_string() && !case_sensitive ? Value::str(py_lower(v.s)) : v;
}

// The attribute path "a.b" (or an int index) of an item, as jinja2's make_attrgetter does.
Value attr_path(const Value& item, const Value& attribute) {
  if (attribute.kind == Value::Kind::Int) return get_item(item, attribute);
  Value v = item;
  static const std::string kDot = ".";
  for (const std::string& part : py_split(to_str(attribute), &kDot, -1)) {
    const bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    v = get_item(v, digits ? Value::integer(std::atoll(part.c_str())) : Value::str(part));
  }
  return v;
}

// Args after the first `skip` positionals, for a test or filter that select/map forward to.
Args forward(const Args& a, size_t skip) {
  Args out;
  for (size_t k = skip; k < a.pos.size(); ++k) out.pos.push_back(a.pos[k]);
  out.kw = a.kw;
  return out;
}

// select/reject/selectattr/rejectattr/map are generators in jinja2, and skip a falsy input.
Value select(const Value& seq, Args& a, bool by_attr, bool keep) {
  List out;
  if (!truthy(seq)) return Value::make_list({}, Seq::Generator);
  const size_t skip = by_attr ? 2 : 1;
  Args rest = forward(a, skip);
  for (const Value& item : iterate(seq)) {
    Value v = item;
    if (by_attr) {
      if (a.pos.empty()) fail_type("selectattr/rejectattr need an attribute name");
      v = attr_path(item, a.pos[0]);
    }
    const size_t ti = skip - 1;
    const bool ok = a.pos.size() > ti ? apply_test(to_str(a.pos[ti]), v, rest) : truthy(v);
    if (ok == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out), Seq::Generator);
}

Value map(const Value& seq, Args& a) {
  List out;
  const Value& attribute = arg(a, 99, "attribute", kNone);
  if (!truthy(seq)) return Value::make_list({}, Seq::Generator);
  for (const Value& item : iterate(seq)) {
    if (!attribute.is_none()) {
      Value v = attr_path(item, attribute);
      const Value& def = arg(a, 99, "default", kNone);
      out.push_back(v.is_undefined() && !def.is_none() ? def : v);
    } else {
      if (a.pos.empty()) fail_type("map needs a filter name or attribute=");
      Args rest = forward(a, 1);
      out.push_back(apply_filter(to_str(a.pos[0]), item, rest));
    }
  }
  return Value::make_list(std::move(out), Seq::Generator);
}

Value sorted(const Value& seq, Args& a, size_t reverse_pos, size_t case_pos, size_t attr_pos) {
  const bool reverse = truthy(arg(a, reverse_pos, "reverse", kFalse));
  const bool cs = truthy(arg(a, case_pos, "case_sensitive", kFalse));
  const Value& attribute = arg(a, attr_pos, "attribute", kNone);
  List items = iterate(seq);
  // jinja2's make_multi_attrgetter: the key is a list, one entry per comma-separated attribute (the
  // item itself without one), so equal entries compare with == and never reach < (Undefined sorts).
  std::vector<std::string> parts;
  static const std::string kComma = ",";
  if (attribute.is_string()) parts = py_split(attribute.s, &kComma, -1);
  auto key = [&](const Value& v) {
    List k;
    if (parts.empty()) k.push_back(sort_key(attribute.is_none() ? v : attr_path(v, attribute), cs));
    for (const std::string& p : parts) k.push_back(sort_key(attr_path(v, Value::str(p)), cs));
    return Value::make_list(std::move(k));
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? less(key(y), key(x)) : less(key(x), key(y));
  });
  return Value::make_list(std::move(items));
}

bool is_mapping(const Value& v) { return v.is_dict() && !v.dict->is_namespace && !v.dict->opaque; }

Value dictsort(const Value& d, Args& a) {
  if (!is_mapping(d)) fail_type("dictsort: expected a dict");
  const bool cs = truthy(arg(a, 0, "case_sensitive", kFalse));
  const Value by = arg(a, 1, "by", Value::str("key"));
  const bool by_value = by.is_string() && by.s == "value";
  const bool reverse = truthy(arg(a, 2, "reverse", kFalse));
  List pairs;
  for (const auto& [k, v] : d.dict->items) pairs.push_back(Value::make_list({d.dict->key(k), v}, Seq::Tuple));
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value kx = sort_key((*x.list)[by_value ? 1 : 0], cs), ky = sort_key((*y.list)[by_value ? 1 : 0], cs);
    return reverse ? less(ky, kx) : less(kx, ky);
  });
  return Value::make_list(std::move(pairs));
}

Value extreme(const Value& seq, Args& a, bool want_max) {
  const bool cs = truthy(arg(a, 0, "case_sensitive", kFalse));
  const Value& attribute = arg(a, 1, "attribute", kNone);
  const List items = iterate(seq);
  if (items.empty()) return Value::undefined("min/max of an empty sequence");
  size_t best = 0;
  for (size_t k = 1; k < items.size(); ++k) {
    const Value kb = sort_key(attribute.is_none() ? items[best] : attr_path(items[best], attribute), cs);
    const Value kk = sort_key(attribute.is_none() ? items[k] : attr_path(items[k], attribute), cs);
    if (want_max ? less(kb, kk) : less(kk, kb)) best = k;
  }
  return items[best];
}

Value unique(const Value& seq, Args& a) {
  const bool cs = truthy(arg(a, 0, "case_sensitive", kFalse));
  const Value& attribute = arg(a, 1, "attribute", kNone);
  List out, seen;
  for (const Value& item : iterate(seq)) {
    const Value key = sort_key(attribute.is_none() ? item : attr_path(item, attribute), cs);
    if (!hashable(key)) fail_type(std::string("unhashable type: '") + type_name(key) + "'");
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::make_list(std::move(out), Seq::Generator);
}

Value indent(const Value& v, Args& a) {
  const Value width = arg(a, 0, "width", Value::integer(4));
  const bool first = truthy(arg(a, 1, "first", kFalse));
  const bool blank = truthy(arg(a, 2, "blank", kFalse));
  // jinja2 appends a newline to the value first, which fails for anything but a str.
  if (!v.is_string()) fail_type(std::string("indent: expected a str, got '") + type_name(v) + "'");
  std::string pad = width.is_string() ? width.s : std::string(static_cast<size_t>(std::clamp<int64_t>(width.i, 0, 1024)), ' ');
  const std::vector<std::string> lines = py_splitlines(to_str(v) + "\n");
  std::string out;
  for (size_t k = 0; k < lines.size(); ++k) {
    if (k) out += '\n';
    if (k && (blank || !lines[k].empty())) out += pad;
    out += lines[k];
  }
  return Value::str(first ? pad + out : out);
}

Value to_int(const Value& v, Args& a) {
  const Value def = arg(a, 0, "default", Value::integer(0));
  if (v.kind == Value::Kind::Int) return v;
  if (v.kind == Value::Kind::Bool) return Value::integer(v.b);
  if (v.kind == Value::Kind::Float) return std::isfinite(v.f) ? Value::integer(static_cast<int64_t>(v.f)) : def;
  if (!v.is_string()) return def;
  const std::string s = py_strip(v.s, true, true);
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (!s.empty() && *end == '\0' && errno == 0) return Value::integer(i);
  const double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && *end == '\0' && std::isfinite(d)) return Value::integer(static_cast<int64_t>(d));
  return def;
}

Value join(const Value& seq, Args& a) {
  const std::string sep = to_str(arg(a, 0, "d", kEmpty));
  const Value& attribute = arg(a, 1, "attribute", kNone);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(seq)) {
    if (!first) out += sep;
    first = false;
    out += to_str(attribute.is_none() ? item : attr_path(item, attribute));
    check_size(out);
  }
  return Value::str(std::move(out));
}

}  // namespace

bool is_known_filter(std::string_view name) {
  for (std::string_view f : kFilters)
    if (f == name) return true;
  return false;
}

Value apply_filter(const std::string& n, const Value& v, Args& a) {
  if (n == "tojson") return Value::str(to_json(v, a));
  if (n == "default" || n == "d") {
    const bool boolean = truthy(arg(a, 1, "boolean", kFalse));
    return v.is_undefined() || (boolean && !truthy(v)) ? arg(a, 0, "default_value", kEmpty) : v;
  }
  if (n == "length" || n == "count") {
    if (v.is_string()) return Value::integer(static_cast<int64_t>(code_point_count(v.s)));
    if (v.is_list() && v.seq != Seq::Generator) return Value::integer(static_cast<int64_t>(v.list->size()));
    if (v.is_dict() && v.dict->opaque) fail(SPECD_E_UNSUPPORTED, "unsupported: the length of the loop object");
    if (v.is_dict() && !v.dict->is_namespace) return Value::integer(static_cast<int64_t>(v.dict->items.size()));
    if (v.is_undefined()) return Value::integer(0);
    fail_type(std::string("object of type '") + type_name(v) + "' has no len()");
  }
  if (n == "safe") return as_markup(Value::str(to_str(v)), true);
  // These keep a Markup a Markup (markupsafe's str methods do).
  if (n == "trim") {
    const Value& chars = arg(a, 0, "chars", kNone);
    return as_markup(Value::str(py_strip(to_str(v), true, true, chars.is_none() ? nullptr : &chars.s)), v.markup);
  }
  if (n == "string") return as_markup(Value::str(to_str(v)), v.markup);
  if (n == "upper") return as_markup(Value::str(py_upper(to_str(v))), v.markup);
  if (n == "lower") return as_markup(Value::str(py_lower(to_str(v))), v.markup);
  if (n == "title") return as_markup(Value::str(title_words(to_str(v))), v.markup);
  if (n == "capitalize") return as_markup(Value::str(py_capitalize(to_str(v))), v.markup);
  if (n == "replace") {
    const Value& count = arg(a, 2, "count", kNone);
    return Value::str(py_replace(to_str(v), to_str(arg(a, 0, "old", kEmpty)), to_str(arg(a, 1, "new", kEmpty)),
                                 count.kind == Value::Kind::Int ? count.i : -1));
  }
  if (n == "join") return join(v, a);
  if (n == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (!is_mapping(v)) fail_type("items: expected a mapping");
    List pairs;
    for (const auto& [k, x] : v.dict->items) pairs.push_back(Value::make_list({v.dict->key(k), x}, Seq::Tuple));
    return Value::make_list(std::move(pairs), Seq::Generator);
  }
  if (n == "list") return Value::make_list(iterate(v));
  if (n == "first" || n == "last") {
    if (n == "last" && v.is_list() && v.seq == Seq::Generator) fail_type("'generator' object is not reversible");
    const List items = iterate(v);
    if (items.empty()) return Value::undefined(n);
    return n == "first" ? items.front() : items.back();
  }
  if (n == "reverse") {
    if (v.is_string()) {
      std::vector<std::string> cps = code_points(v.s);
      std::string out;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
      return Value::str(std::move(out));
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  // int(Undefined) and float(Undefined) raise UndefinedError, which the filters do not catch.
  if ((n == "int" || n == "float") && v.is_undefined()) fail_type("'" + (v.s.empty() ? std::string("undefined") : v.s) + "' is undefined");
  if (n == "int") return to_int(v, a);
  if (n == "float") {
    if (v.is_number()) return Value::real(as_double(v));
    char* end = nullptr;
    const std::string s = py_strip(to_str(v), true, true);
    const double d = std::strtod(s.c_str(), &end);
    return !s.empty() && *end == '\0' ? Value::real(d) : arg(a, 0, "default", Value::real(0.0));
  }
  if (n == "abs") {
    if (v.kind == Value::Kind::Float) return Value::real(std::fabs(v.f));
    if (!v.is_number()) fail_type(std::string("bad operand type for abs(): '") + type_name(v) + "'");
    const int64_t i = v.kind == Value::Kind::Int ? v.i : v.b;
    if (i == INT64_MIN) fail(SPECD_E_LIMIT, "chat template: integer overflow");
    return Value::integer(i < 0 ? -i : i);
  }
  if (n == "sum") {
    Value total = arg(a, 1, "start", Value::integer(0));
    const Value& attribute = arg(a, 0, "attribute", kNone);
    for (const Value& item : iterate(v)) total = binary_op("+", total, attribute.is_none() ? item : attr_path(item, attribute));
    return total;
  }
  if (n == "map") return map(v, a);
  if (n == "select" || n == "reject") return select(v, a, false, n == "select");
  if (n == "selectattr" || n == "rejectattr") return select(v, a, true, n == "selectattr");
  if (n == "sort") return sorted(v, a, 0, 1, 2);
  if (n == "dictsort") return dictsort(v, a);
  if (n == "unique") return unique(v, a);
  if (n == "min" || n == "max") return extreme(v, a, n == "max");
  if (n == "indent") return indent(v, a);
  fail(SPECD_E_UNSUPPORTED, "unsupported filter '" + n + "'");
}

}  // namespace specd::chat::jinja
