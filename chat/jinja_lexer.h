// Jinja source into tokens, with the whitespace control Hugging Face's environment uses
// (trim_blocks, lstrip_blocks, `-`/`+` markers) applied to the text between tags.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace specd::chat::jinja {

enum class Tok {
  Text,        // template text between tags (already whitespace-controlled)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // value: the unescaped text
  Int,
  Float,
  Op,          // punctuation and operators: + - * / // % ** ~ ( ) [ ] { } , . : | = == != < > <= >=
  End,
};

struct Token {
  Tok type;
  std::string text;
  int line;  // 1-based line of the token's first character
};

// Tokenizes the whole template. Newlines are normalized to "\n" and one trailing newline is dropped,
// as jinja2 does with keep_trailing_newline=False. Throws Failure (SPECD_E_UNSUPPORTED, with the line)
// on an unterminated tag, comment or string and on characters no Jinja token starts with.
std::vector<Token> tokenize(std::string_view source);

}  // namespace specd::chat::jinja
