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
bool in(uint32_t cp, uint32_t lo, uint32_t hi) { return cp >= lo && cp <= hi; }

// How repr() writes a non-ASCII code point: 'k' kept (printable), 'x'/'u' escaped (\xNN, \uNNNN:
// Python's non-printable spaces and format characters), or '?' when this table does not know.
char non_ascii_class(uint32_t cp) {
  if (cp <= 0xA0 || cp == 0xAD) return 'x';
  if (cp == 0x1680 || in(cp, 0x2000, 0x200F) || in(cp, 0x2028, 0x202F) || in(cp, 0x205F, 0x206F) || cp == 0x3000 ||
      cp == 0xFEFF)
    return 'u';
  const bool printable = in(cp, 0xA1, 0x377) || in(cp, 0x37A, 0x37F) || in(cp, 0x384, 0x38A) || cp == 0x38C ||
                         in(cp, 0x38E, 0x3A1) || in(cp, 0x3A3, 0x52F) || in(cp, 0x2010, 0x2027) || in(cp, 0x2030, 0x205E) ||
                         in(cp, 0x20A0, 0x20C0) || in(cp, 0x2100, 0x218B) || in(cp, 0x2190, 0x2426) ||
                         in(cp, 0x2500, 0x2B73) || in(cp, 0x3001, 0x303F) || in(cp, 0x3041, 0x3096) ||
                         in(cp, 0x3099, 0x30FF) || in(cp, 0x4E00, 0x9FFF) || in(cp, 0xAC00, 0xD7A3) ||
                         in(cp, 0xFF01, 0xFFBE) || in(cp, 0x1F300, 0x1F64F) || in(cp, 0x1F680, 0x1F6C5);
  return printable ? 'k' : '?';
}

// Appends the multi-byte code point starting at s[k] as repr() writes it; returns its length.
size_t repr_non_ascii(const std::string& s, size_t k, std::string& out) {
  const unsigned char c = static_cast<unsigned char>(s[k]);
  size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || k + n > s.size()) fail(SPECD_E_UNSUPPORTED, "unsupported: printing a string that is not valid UTF-8");
  uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
  for (size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3f);
  const char cls = non_ascii_class(cp);
  if (cls == '?') {
    char b[80];
    std::snprintf(b, sizeof b, "unsupported: repr() of U+%04X (printable or not)", static_cast<unsigned>(cp));
    fail(SPECD_E_UNSUPPORTED, b);
  }
  if (cls == 'k') {
    out.append(s, k, n);
  } else {
    char b[16];
    std::snprintf(b, sizeof b, cls == 'x' ? "\\x%02x" : "\\u%04x", static_cast<unsigned>(cp));
    out += b;
  }
  return n;
}

std::string repr_string(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (size_t k = 0; k < s.size(); ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    if (c >= 0x80) {
      k += repr_non_ascii(s, k, out) - 1;
    } else if (c == q || c == '\\') {
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
