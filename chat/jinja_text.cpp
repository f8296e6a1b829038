// Python str operations on UTF-8 text (see jinja_text.h).
#include "chat/jinja_text.h"

namespace specd::chat::jinja {

namespace {

size_t cp_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 6) return 2;
  if ((c >> 4) == 14) return 3;
  if ((c >> 3) == 30) return 4;
  return 1;
}

// str.isspace() for one code point given as UTF-8.
bool is_space_cp(std::string_view cp) {
  if (cp.size() == 1) {
    const unsigned char c = static_cast<unsigned char>(cp[0]);
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  }
  static const std::string_view kWide[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003",
                                           "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a",
                                           "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};
  for (std::string_view w : kWide)
    if (cp == w) return true;
  return false;
}

bool in_chars(std::string_view cp, const std::string* chars) {
  if (!chars) return is_space_cp(cp);
  for (const std::string& c : code_points(*chars))
    if (c == cp) return true;
  return false;
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t k = 0; k < s.size();) {
    size_t n = cp_len(static_cast<unsigned char>(s[k]));
    if (k + n > s.size()) n = 1;
    out.emplace_back(s.substr(k, n));
    k += n;
  }
  return out;
}

size_t code_point_count(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars) {
  const std::vector<std::string> cps = code_points(s);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in_chars(cps[b], chars)) ++b;
  if (right)
    while (e > b && in_chars(cps[e - 1], chars)) --e;
  std::string out;
  for (size_t k = b; k < e; ++k) out += cps[k];
  return out;
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, long maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
      const size_t k = s.find(*sep, pos);
      if (k == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, k - pos));
      pos = k + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  const std::vector<std::string> cps = code_points(s);
  size_t k = 0;
  while (true) {
    while (k < cps.size() && is_space_cp(cps[k])) ++k;
    if (k == cps.size()) break;
    std::string word;
    if (maxsplit >= 0 && static_cast<long>(out.size()) == maxsplit) {
      size_t e = cps.size();
      while (e > k && is_space_cp(cps[e - 1])) --e;
      for (; k < e; ++k) word += cps[k];
      out.push_back(word);
      break;
    }
    while (k < cps.size() && !is_space_cp(cps[k])) word += cps[k++];
    out.push_back(word);
  }
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, long count) {
  std::string out;
  if (old.empty()) {  // Python inserts repl between every code point and at both ends
    const std::vector<std::string> cps = code_points(s);
    long n = 0;
    for (const std::string& cp : cps) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
      }
      out += cp;
    }
    if (count < 0 || n < count) out += repl;
    return out;
  }
  size_t pos = 0;
  long n = 0;
  while (count < 0 || n < count) {
    const size_t k = s.find(old, pos);
    if (k == std::string_view::npos) break;
    out.append(s.substr(pos, k - pos)).append(repl);
    pos = k + old.size();
    ++n;
  }
  return out.append(s.substr(pos));
}

std::vector<std::string> py_splitlines(std::string_view s) {
  std::vector<std::string> out;
  std::string line;
  for (size_t k = 0; k < s.size(); ++k) {
    const char c = s[k];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' || c == '\x1e') {
      out.push_back(line);
      line.clear();
      if (c == '\r' && k + 1 < s.size() && s[k + 1] == '\n') ++k;
    } else {
      line += c;
    }
  }
  if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace specd::chat::jinja
