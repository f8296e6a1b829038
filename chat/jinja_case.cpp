// Python's str.upper/lower/title/capitalize on UTF-8 for the scripts chat text mostly uses: ASCII,
// Latin-1, Latin Extended-A, basic Greek and Cyrillic, fullwidth Latin, and the caseless blocks
// (CJK, Hangul, kana, Arabic, Hebrew, Indic, Thai, punctuation, symbols, emoji). A code point outside
// those (or with a special mapping, like 'ß' -> 'SS' or the final sigma) is refused with
// SPECD_E_UNSUPPORTED rather than changed wrongly.
#include <specd/error.h>

#include <cstdio>

#include "chat/jinja_text.h"
#include "chat/jinja_value.h"

namespace specd::chat::jinja {

namespace {

struct Case {
  bool cased;
  uint32_t upper, lower;
};

bool in(uint32_t cp, uint32_t lo, uint32_t hi) { return cp >= lo && cp <= hi; }

Case pair(uint32_t up, uint32_t low) { return {true, up, low}; }

[[noreturn]] void refuse(uint32_t cp) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "unsupported: changing the case of U+%04X", static_cast<unsigned>(cp));
  fail(SPECD_E_UNSUPPORTED, buf);
}

Case classify(uint32_t cp) {
  if (in(cp, 'A', 'Z')) return pair(cp, cp + 32);
  if (in(cp, 'a', 'z')) return pair(cp - 32, cp);
  if (cp < 0xC0) return {cp == 0xAA || cp == 0xBA, cp, cp};  // ª º are lower-case letters without an upper case
  if (cp == 0xD7 || cp == 0xF7) return {false, cp, cp};
  if (in(cp, 0xC0, 0xDE)) return pair(cp, cp + 0x20);
  if (in(cp, 0xE0, 0xFE)) return pair(cp - 0x20, cp);
  if (in(cp, 0x100, 0x137) || in(cp, 0x14A, 0x177)) return pair(cp & ~1u, cp | 1u);
  if (in(cp, 0x139, 0x148) || in(cp, 0x179, 0x17E)) return cp & 1u ? pair(cp, cp + 1) : pair(cp - 1, cp);
  if (in(cp, 0x391, 0x3A1) || in(cp, 0x3A4, 0x3A9)) return pair(cp, cp + 0x20);
  if (in(cp, 0x3B1, 0x3C1) || in(cp, 0x3C4, 0x3C9) || cp == 0x3C3) return pair(cp - 0x20, cp);
  if (in(cp, 0x410, 0x42F)) return pair(cp, cp + 0x20);
  if (in(cp, 0x430, 0x44F)) return pair(cp - 0x20, cp);
  if (in(cp, 0x400, 0x40F)) return pair(cp, cp + 0x50);
  if (in(cp, 0x450, 0x45F)) return pair(cp - 0x50, cp);
  if (in(cp, 0xFF21, 0xFF3A)) return pair(cp, cp + 0x20);
  if (in(cp, 0xFF41, 0xFF5A)) return pair(cp - 0x20, cp);
  const bool caseless = (in(cp, 0x300, 0x36F) && cp != 0x345) || in(cp, 0x590, 0x6FF) || in(cp, 0x900, 0xE7F) ||
                        in(cp, 0x2000, 0x20FF) || in(cp, 0x2190, 0x23FF) || in(cp, 0x2500, 0x27BF) || in(cp, 0x2E80, 0x9FFF) ||
                        in(cp, 0xAC00, 0xD7AF) || in(cp, 0xFE00, 0xFE0F) || in(cp, 0xFF00, 0xFF20) || in(cp, 0xFF3B, 0xFF40) ||
                        in(cp, 0xFF5B, 0xFFEF) || in(cp, 0x1F000, 0x1FAFF);
  if (caseless) return {false, cp, cp};
  refuse(cp);
}

uint32_t decode(const std::string& s) {
  const unsigned char c = static_cast<unsigned char>(s[0]);
  if (s.size() == 1) return c;
  uint32_t cp = s.size() == 2 ? c & 0x1f : s.size() == 3 ? c & 0x0f : c & 0x07;
  for (size_t k = 1; k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[k]) & 0x3f);
  return cp;
}


// mode: 'u' upper, 'l' lower, 't' title (upper after a caseless character), 'c' capitalize.
std::string convert(std::string_view s, char mode) {
  std::string out;
  bool prev_cased = false, first = true;
  for (const std::string& ch : code_points(s)) {
    if (ch.size() == 1 && static_cast<unsigned char>(ch[0]) >= 0x80) {  // invalid UTF-8 byte: keep
      out += ch;
      continue;
    }
    const uint32_t cp = decode(ch);
    const Case c = classify(cp);
    bool up = mode == 'u';
    if (mode == 't') up = !prev_cased;
    if (mode == 'c') up = first;
    // Σ lower-cases to σ or, at a word's end, ς: Python decides by context, so refuse it.
    if (!up && cp == 0x3A3) refuse(cp);
    append_utf8(out, up ? c.upper : c.lower);
    prev_cased = c.cased;
    first = false;
  }
  return out;
}

}  // namespace

std::string py_upper(std::string_view s) { return convert(s, 'u'); }
std::string py_lower(std::string_view s) { return convert(s, 'l'); }
std::string py_title(std::string_view s) { return convert(s, 't'); }
std::string py_capitalize(std::string_view s) { return convert(s, 'c'); }

}  // namespace specd::chat::jinja
