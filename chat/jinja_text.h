// Python str operations on UTF-8 text that templates call: code points, whitespace stripping, split,
// case changes (jinja_case.cpp: the common scripts; SPECD_E_UNSUPPORTED for a code point outside them).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace specd::chat::jinja {

// Appends code point cp (< 0x110000) as UTF-8: for \u escapes and case mappings.
void append_utf8(std::string& out, uint32_t cp);
// The text split into code points (each a UTF-8 string of 1-4 bytes; invalid bytes stand alone).
std::vector<std::string> code_points(std::string_view s);
size_t code_point_count(std::string_view s);
// str.strip/lstrip/rstrip: without chars, Python's whitespace (ASCII and the Unicode spaces);
// with chars, any of those code points.
std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr);
// str.split(sep, maxsplit): sep == nullptr splits on runs of whitespace and drops empty ends.
std::vector<std::string> py_split(std::string_view s, const std::string* sep, long maxsplit);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title(): upper-cased after a caseless character
std::string py_capitalize(std::string_view s);  // first upper, rest lower
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, long count);
// str.splitlines() without keepends.
std::vector<std::string> py_splitlines(std::string_view s);

}  // namespace specd::chat::jinja
