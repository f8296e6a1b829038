// The Jinja lexer: tags and text (whitespace control as jinja2's lexer applies it), then the
// expression tokens inside each tag.
#include "chat/jinja_lexer.h"

#include <specd/error.h>

#include "chat/jinja_text.h"
#include "chat/jinja_value.h"

namespace specd::chat::jinja {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string line_msg(int line, const std::string& what) {
  std::string m = "chat template line ";
  m.append(std::to_string(line)).append(": ").append(what);
  return m;
}

[[noreturn]] void lex_fail(int line, const std::string& what) { fail(SPECD_E_UNSUPPORTED, line_msg(line, what), line); }


class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;  // jinja2: the previous tag's match ended with "\n"
    while (pos_ < s_.size()) {
      const size_t open = next_open(pos_);
      std::string text = s_.substr(pos_, open - pos_);
      if (open == s_.size()) {
        emit_text(text, pos_);
        break;
      }
      const char kind = s_[open + 1];  // '{', '%' or '#'
      const char sign = open + 2 < s_.size() ? s_[open + 2] : '\0';
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_ws(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks
        const size_t l = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        bool all_ws = l < text.size();
        for (size_t k = l; k < text.size(); ++k) all_ws = all_ws && is_ws(text[k]);
        if ((l > 0 || line_starting) && all_ws) text.resize(l);
      }
      emit_text(text, pos_);
      pos_ = open + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      const size_t close_start = kind == '#' ? comment(open) : tag(kind, open);
      line_starting = close_start > 0 && s_[close_start - 1] == '\n';
    }
    out_.push_back({Tok::End, "", line_at(s_.size())});
    return std::move(out_);
  }

 private:
  size_t next_open(size_t from) const {
    for (size_t k = from; k + 1 < s_.size(); ++k)
      if (s_[k] == '{' && (s_[k + 1] == '{' || s_[k + 1] == '%' || s_[k + 1] == '#')) return k;
    return s_.size();
  }

  int line_at(size_t p) {
    for (; line_pos_ < p && line_pos_ < s_.size(); ++line_pos_)
      if (s_[line_pos_] == '\n') ++line_;
    return line_;
  }

  void emit_text(const std::string& text, size_t at) {
    if (!text.empty()) out_.push_back({Tok::Text, text, line_at(at)});
  }

  // After a closing marker at [p, p+2): `-` strips all following whitespace; trim_blocks drops one
  // newline after %} and #}. Returns the position after what was consumed.
  size_t after_close(size_t p, bool minus, bool trim) {
    size_t q = p + 2;
    if (minus) {
      while (q < s_.size() && is_ws(s_[q])) ++q;
    } else if (trim && q < s_.size() && s_[q] == '\n') {
      ++q;
    }
    return q;
  }

  size_t comment(size_t open) {
    const size_t e = s_.find("#}", pos_);
    if (e == std::string::npos) lex_fail(line_at(open), "unterminated comment");
    pos_ = after_close(e, e > pos_ && s_[e - 1] == '-', true);
    return pos_;
  }

  // Tokens of one {{ }} or {% %}; returns the position after the closing marker.
  size_t tag(char kind, size_t open) {
    const char closer = kind == '{' ? '}' : '%';
    out_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", line_at(open)});
    while (true) {
      while (pos_ < s_.size() && is_ws(s_[pos_])) ++pos_;
      if (pos_ >= s_.size()) lex_fail(line_at(open), kind == '{' ? "unterminated '{{'" : "unterminated '{%'");
      const bool minus = s_[pos_] == '-' && pos_ + 2 < s_.size() && s_[pos_ + 1] == closer && s_[pos_ + 2] == '}';
      if (minus || (s_[pos_] == closer && pos_ + 1 < s_.size() && s_[pos_ + 1] == '}')) {
        const size_t p = pos_ + (minus ? 1 : 0);
        out_.push_back({kind == '{' ? Tok::VarEnd : Tok::BlockEnd, "", line_at(p)});
        pos_ = after_close(p, minus, kind == '%');
        return pos_;
      }
      token();
    }
  }

  void token() {
    const int line = line_at(pos_);
    const char c = s_[pos_];
    if (is_name_start(c)) {
      size_t e = pos_;
      while (e < s_.size() && (is_name_start(s_[e]) || is_digit(s_[e]))) ++e;
      out_.push_back({Tok::Name, s_.substr(pos_, e - pos_), line});
      pos_ = e;
    } else if (is_digit(c)) {
      number(line);
    } else if (c == '\'' || c == '"') {
      string(line);
    } else {
      static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")",
                                         "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">"};
      for (const char* op : kOps) {
        const std::string_view o(op);
        if (s_.compare(pos_, o.size(), o) == 0) {
          out_.push_back({Tok::Op, std::string(o), line});
          pos_ += o.size();
          return;
        }
      }
      lex_fail(line, std::string("unexpected character '") + c + "'");
    }
  }

  void number(int line) {
    size_t e = pos_;
    auto digits = [&] {
      while (e < s_.size() && (is_digit(s_[e]) || (s_[e] == '_' && e + 1 < s_.size() && is_digit(s_[e + 1])))) ++e;
    };
    digits();
    bool is_float = false;
    if (e + 1 < s_.size() && s_[e] == '.' && is_digit(s_[e + 1])) {
      is_float = true;
      ++e;
      digits();
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t f = e + 1;
      if (f < s_.size() && (s_[f] == '+' || s_[f] == '-')) ++f;
      if (f < s_.size() && is_digit(s_[f])) {
        is_float = true;
        e = f;
        digits();
      }
    }
    std::string text;
    for (size_t k = pos_; k < e; ++k)
      if (s_[k] != '_') text += s_[k];
    out_.push_back({is_float ? Tok::Float : Tok::Int, text, line});
    pos_ = e;
  }

  // A quoted string with Python's backslash escapes (jinja2 decodes with "unicode-escape").
  void string(int line) {
    const char q = s_[pos_++];
    std::string v;
    while (true) {
      if (pos_ >= s_.size()) lex_fail(line, "unterminated string");
      const char c = s_[pos_++];
      if (c == q) break;
      if (c != '\\') {
        v += c;
        continue;
      }
      if (pos_ >= s_.size()) lex_fail(line, "unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case 'a': v += '\a'; break;
        case '0': v += '\0'; break;
        case '\n': break;
        case 'x': case 'u': case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos_ + n > s_.size()) lex_fail(line, "truncated \\x/\\u escape in string");
          unsigned long cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = s_[pos_ + k];
            const int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (d < 0) lex_fail(line, "bad \\x/\\u escape in string");
            cp = cp * 16 + static_cast<unsigned long>(d);
          }
          pos_ += n;
          append_utf8(v, static_cast<uint32_t>(cp));
          break;
        }
        default: v += '\\'; v += e;  // Python keeps unknown escapes as written
      }
    }
    out_.push_back({Tok::String, v, line});
  }

  std::string s_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

// jinja2 splits on \r\n, \r and \n, joins with \n and drops one empty last line.
std::string normalize_newlines(std::string_view src) {
  std::string s;
  s.reserve(src.size());
  for (size_t k = 0; k < src.size(); ++k) {
    if (src[k] == '\r') {
      s += '\n';
      if (k + 1 < src.size() && src[k + 1] == '\n') ++k;
    } else {
      s += src[k];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace specd::chat::jinja
