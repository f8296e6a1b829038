// Python's str() and repr() of template values, and CPython's float formatting.
#include <specd/error.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/jinja_value.h"

namespace specd::chat::jinja {

// repr(float): the shortest digits that round-trip, fixed notation for exponents -4..15 and
// scientific ("1e-05", "1.5e+16") outside, as CPython's float_repr_style 'short' does.
std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  std::string sign;
  if (mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = sign;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out.append("0.").append(static_cast<size_t>(-exp - 1), '0').append(digits);
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out.append(digits).append(static_cast<size_t>(exp) + 1 - digits.size(), '0').append(".0");
    } else {
      out.append(digits, 0, static_cast<size_t>(exp) + 1).append(".").append(digits, static_cast<size_t>(exp) + 1);
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) out.append(".").append(digits, 1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out.append(ebuf);
}

namespace {

// repr(str): single quotes unless the text holds ' and no ", escapes as CPython writes them.
std::string repr_string(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == q || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

}  // namespace

std::string repr(const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind) {
    case Value::Kind::Undefined: return "Undefined";  // repr(); str() of it is "" (to_str)
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return v.b ? "True" : "False";
    case Value::Kind::Int: return std::to_string(v.i);
    case Value::Kind::Float: return py_float_repr(v.f);
    case Value::Kind::String: return repr_string(v.s);
    case Value::Kind::List: {
      // Python prints a generator with its address, which no renderer can reproduce.
      if (v.seq == Seq::Generator) fail(SPECD_E_UNSUPPORTED, "unsupported: printing a generator (add '| list')");
      const bool tuple = v.seq == Seq::Tuple;
      std::string out = tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += repr((*v.list)[k], depth + 1);
      }
      if (tuple) return out + (v.list->size() == 1 ? ",)" : ")");
      if (v.seq == Seq::List) return out + "]";
      return type_name(v) + ("(" + out + "])");
    }
    case Value::Kind::Dict: {
      if (v.dict->opaque) fail(SPECD_E_UNSUPPORTED, "unsupported: printing the loop object");
      std::string out = v.dict->is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, x] : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        out.append(v.dict->int_keys ? k : repr_string(k)).append(": ").append(repr(x, depth + 1));
      }
      return out + (v.dict->is_namespace ? "}>" : "}");
    }
    case Value::Kind::Callable:  // Python prints an address, which no renderer can reproduce
      fail(SPECD_E_UNSUPPORTED, "unsupported: printing the function '" + v.fn->name + "'");
  }
  return "";
}

std::string to_str(const Value& v) { return v.is_string() ? v.s : v.is_undefined() ? std::string() : repr(v); }

}  // namespace specd::chat::jinja
