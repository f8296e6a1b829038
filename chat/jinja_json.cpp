// HF's tojson filter: Python's json.dumps with HF's defaults (transformers' chat_template_utils
// overrides jinja2's tojson, which would HTML-escape, by
// `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=False)`).
#include <specd/error.h>

#include <algorithm>
#include <cstdio>

#include "chat/jinja_builtins.h"

namespace specd::chat::jinja {

namespace {

struct JsonStyle {
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool pretty = false;
  std::string indent;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
};

void put_escape(std::string& out, unsigned cp) {
  char b[8];
  std::snprintf(b, sizeof b, "\\u%04x", cp);
  out += b;
}

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t k = 0; k < s.size(); ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
          put_escape(out, c);
        } else if (c >= 0x80 && ensure_ascii) {  // \uXXXX, as surrogate pairs past the BMP
          size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
          if (k + n > s.size()) n = 1;
          unsigned cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
          for (size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3f);
          k += n - 1;
          if (cp >= 0x10000) {
            cp -= 0x10000;
            put_escape(out, 0xd800 + (cp >> 10));
            put_escape(out, 0xdc00 + (cp & 0x3ff));
          } else {
            put_escape(out, cp);
          }
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void newline(std::string& out, const JsonStyle& st, int level) {
  if (!st.pretty) return;
  out += '\n';
  for (int k = 0; k < level; ++k) out += st.indent;
}

void dump(std::string& out, const Value& v, const JsonStyle& st, int level) {
  check_depth(level);
  switch (v.kind) {
    case Value::Kind::None: out += "null"; return;
    case Value::Kind::Bool: out += v.b ? "true" : "false"; return;
    case Value::Kind::Int: out += std::to_string(v.i); return;
    case Value::Kind::Float:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f < 0 ? "-Infinity" : "Infinity";
      else out += py_float_repr(v.f);
      return;
    case Value::Kind::String: dump_string(out, v.s, st.ensure_ascii); return;
    case Value::Kind::List: {
      if (!v.is_sequence()) break;
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += st.item_sep;
        newline(out, st, level + 1);
        dump(out, (*v.list)[k], st, level + 1);
      }
      newline(out, st, level);
      out += ']';
      return;
    }
    case Value::Kind::Dict: {
      if (v.dict->is_namespace || v.dict->opaque) break;
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      const Dict& d = *v.dict;
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [&d](auto* a, auto* b) { return less(d.key(a->first), d.key(b->first)); });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += st.item_sep;
        newline(out, st, level + 1);
        dump_string(out, items[k]->first, st.ensure_ascii);
        out += st.key_sep;
        dump(out, items[k]->second, st, level + 1);
      }
      newline(out, st, level);
      out += '}';
      return;
    }
    default: break;
  }
  fail_type(std::string("Object of type ") + type_name(v) + " is not JSON serializable");
}

}  // namespace

std::string to_json(const Value& v, const Args& args) {
  static const Value kNone = Value::none(), kFalse = Value::boolean(false);
  JsonStyle st;
  st.ensure_ascii = truthy(arg(args, 0, "ensure_ascii", kFalse));
  const Value& indent = arg(args, 1, "indent", kNone);
  const Value& seps = arg(args, 2, "separators", kNone);
  st.sort_keys = truthy(arg(args, 3, "sort_keys", kFalse));
  if (!indent.is_none()) {
    st.pretty = true;
    st.item_sep.assign(1, ',');  // json.dumps drops the space when indenting
    if (indent.is_string()) st.indent = indent.s;
    else if (indent.kind == Value::Kind::Int) st.indent.assign(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(indent.i, 1024))), ' ');
    else fail_type("tojson: indent must be an int or a string");
  }
  if (!seps.is_none()) {
    if (!seps.is_list() || seps.list->size() != 2 || !(*seps.list)[0].is_string() || !(*seps.list)[1].is_string())
      fail_type("tojson: separators must be a pair of strings");
    st.item_sep = (*seps.list)[0].s;
    st.key_sep = (*seps.list)[1].s;
  }
  std::string out;
  dump(out, v, st, 0);
  return out;
}

}  // namespace specd::chat::jinja
