// Python's arithmetic, concatenation, repetition, slicing and `in` on template values.
#include <specd/error.h>

#include <cmath>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace specd::chat::jinja {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

[[noreturn]] void unsupported_operands(const std::string& op, const Value& a, const Value& b) {
  std::string m = "unsupported operand type(s) for ";
  m.append(op).append(": '").append(type_name(a)).append("' and '").append(type_name(b)).append("'");
  fail_type(m);
}

int64_t as_int(const Value& v) { return v.kind == Value::Kind::Int ? v.i : v.b; }

[[noreturn]] void overflow() { fail(SPECD_E_LIMIT, "chat template: integer overflow (Python's ints are unbounded)"); }

Value float_op(const std::string& op, double x, double y);

Value int_op(const std::string& op, int64_t x, int64_t y) {
  int64_t r = 0;
  if (op == "+") {
    if (__builtin_add_overflow(x, y, &r)) overflow();
  } else if (op == "-") {
    if (__builtin_sub_overflow(x, y, &r)) overflow();
  } else if (op == "*") {
    if (__builtin_mul_overflow(x, y, &r)) overflow();
  } else if (op == "/") {
    if (y == 0) fail_type("division by zero");
    return Value::real(static_cast<double>(x) / static_cast<double>(y));
  } else if (op == "//" || op == "%") {
    if (y == 0) fail_type("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) overflow();
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {
      --q;
      m += y;
    }
    r = op == "//" ? q : m;
  } else {  // **
    if (y < 0) return float_op("**", static_cast<double>(x), static_cast<double>(y));
    r = 1;
    for (int64_t k = 0; k < y; ++k) {
      if (__builtin_mul_overflow(r, x, &r)) overflow();
      if (r == 0 || r == 1) break;
    }
    if (r == 1 && x == -1 && y % 2 == 1) r = -1;
  }
  return Value::integer(r);
}

Value float_op(const std::string& op, double x, double y) {
  if (op == "+") return Value::real(x + y);
  if (op == "-") return Value::real(x - y);
  if (op == "*") return Value::real(x * y);
  if (op == "**") {  // Python raises where C's pow gives inf, nan or needs a complex result
    if (x == 0 && y < 0) fail_type("0.0 cannot be raised to a negative power");
    if (x < 0 && std::isfinite(y) && y != std::floor(y)) fail(SPECD_E_UNSUPPORTED, "unsupported: a complex power");
    const double r = std::pow(x, y);
    if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) fail_type("(34, 'Numerical result out of range')");
    return Value::real(r);
  }
  if (y == 0) fail_type("float division by zero");
  if (op == "/") return Value::real(x / y);
  double m = std::fmod(x, y);  // CPython's float_divmod, so 2.5 // 0.1 is 24.0 as in Python
  double div = (x - m) / y;
  if (m != 0 && ((y < 0) != (m < 0))) {
    m += y;
    div -= 1.0;
  }
  if (op == "%") return Value::real(m == 0 ? std::copysign(0.0, y) : m);
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return Value::real(div == 0 ? std::copysign(0.0, x / y) : fl);
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::str("") : Value::make_list({}, seq.seq);
  const size_t unit = seq.is_string() ? seq.s.size() : seq.list->size();
  if (unit != 0 && static_cast<uint64_t>(n) > kMaxStringBytes / unit) fail(SPECD_E_LIMIT, "chat template: repetition too long");
  if (seq.is_string()) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    return Value::str(std::move(out));
  }
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out), seq.seq);
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "%" && a.is_string()) fail(SPECD_E_UNSUPPORTED, "unsupported printf-style '%' string formatting");
  if (a.is_undefined() || b.is_undefined())
    fail_type("'" + (a.is_undefined() ? a.s : b.s) + "' is undefined");
  if (a.is_number() && b.is_number()) {
    if (a.kind != Value::Kind::Float && b.kind != Value::Kind::Float) return int_op(op, as_int(a), as_int(b));
    return float_op(op, as_double(a), as_double(b));
  }
  if (op == "+" && a.is_string() && b.is_string()) {
    if (!a.markup && !b.markup) return Value::str(a.s + b.s);
    Value r = Value::str((a.markup ? a.s : html_escape(a.s)) + (b.markup ? b.s : html_escape(b.s)));
    r.markup = true;
    return r;
  }
  if (op == "+" && a.is_sequence() && b.is_sequence() && a.seq == b.seq) {
    List out = *a.list;
    out.insert(out.end(), b.list->begin(), b.list->end());
    return Value::make_list(std::move(out), a.seq);
  }
  if (op == "*" && (a.is_string() || a.is_sequence()) && (b.kind == Value::Kind::Int || b.kind == Value::Kind::Bool))
    return repeat(a, as_int(b));
  if (op == "*" && (b.is_string() || b.is_sequence()) && (a.kind == Value::Kind::Int || a.kind == Value::Kind::Bool))
    return repeat(b, as_int(a));
  unsupported_operands(op, a, b);
}

namespace {

// Python's slice.indices(): clamp start/stop for a sequence of length n and step.
void slice_bounds(int64_t n, const Value& start, const Value& stop, int64_t step, int64_t* b, int64_t* e) {
  auto norm = [&](const Value& v, int64_t def, int64_t lo, int64_t hi) {
    if (v.is_none()) return def;
    if (v.kind != Value::Kind::Int && v.kind != Value::Kind::Bool) fail_type("slice indices must be integers or None");
    int64_t x = as_int(v);
    if (x < 0) x += n;
    return x < lo ? lo : x > hi ? hi : x;
  };
  if (step > 0) {
    *b = norm(start, 0, 0, n);
    *e = norm(stop, n, 0, n);
  } else {
    *b = norm(start, n - 1, -1, n - 1);
    *e = norm(stop, -1, -1, n - 1);
  }
}

}  // namespace

Value slice(const Value& v, const Value& start, const Value& stop, const Value& step_v) {
  int64_t step = 1;
  if (!step_v.is_none()) {
    if (step_v.kind != Value::Kind::Int) fail_type("slice indices must be integers or None");
    step = step_v.i;
    if (step == 0) fail_type("slice step cannot be zero");
  }
  if (v.is_undefined()) fail_type("'" + v.s + "' is undefined");
  // jinja2 answers Undefined or a TypeError here depending on whether its optimizer folded the
  // expression; refuse rather than guess.
  if (!v.is_string() && !v.is_sequence()) fail(SPECD_E_UNSUPPORTED, std::string("unsupported: slicing a '") + type_name(v) + "'");
  std::vector<std::string> cps;
  if (v.is_string()) cps = code_points(v.s);
  const int64_t n = static_cast<int64_t>(v.is_string() ? cps.size() : v.list->size());
  int64_t b = 0, e = 0;
  slice_bounds(n, start, stop, step, &b, &e);
  std::string s;
  List l;
  for (int64_t k = b; step > 0 ? k < e : k > e; k += step) {
    if (v.is_string()) s += cps[static_cast<size_t>(k)];
    else l.push_back((*v.list)[static_cast<size_t>(k)]);
  }
  return v.is_string() ? Value::str(std::move(s)) : Value::make_list(std::move(l), v.seq);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Value::Kind::String:
      if (!item.is_string()) fail_type(std::string("'in <string>' requires string as left operand, not ") + type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Value::Kind::List:
      for (const Value& x : *container.list)
        if (equals(x, item)) return true;
      return false;
    case Value::Kind::Dict:
      if (container.dict->is_namespace) fail_type("argument of type 'Namespace' is not iterable");
      if (container.dict->opaque) fail(SPECD_E_UNSUPPORTED, "unsupported: 'in' the loop object");
      if (!hashable(item)) fail_type(std::string("unhashable type: '") + type_name(item) + "'");
      return container.dict->find(item) != nullptr;
    case Value::Kind::Undefined: return false;  // jinja2's Undefined iterates as empty
    default: fail_type(std::string("argument of type '") + type_name(container) + "' is not iterable");
  }
}

}  // namespace specd::chat::jinja
