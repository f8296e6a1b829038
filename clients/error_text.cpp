// error_message/error_name: SPECD_ERROR_MAP as switch tables, and a compile-time table of "unknown error N".
#include "clients/error_text.h"

#include <specd/error.h>

#include <array>
#include <cstddef>

namespace specd::clients {
namespace {

// Unknown codes are rendered ahead of time for every primary code in [-255, 255] (an extended
// code's primary always is), so the text can be a static string: a newer daemon's code still reads
// "unknown error -57" without a per-thread buffer.
constexpr int kSpan = 255;
constexpr size_t kTextBytes = 24;  // "unknown error -255" + NUL fits

using UnknownTable = std::array<std::array<char, kTextBytes>, 2 * kSpan + 1>;

constexpr UnknownTable make_unknown_table() {
  UnknownTable t{};
  constexpr char kPrefix[] = "unknown error ";
  for (int code = -kSpan; code <= kSpan; ++code) {
    auto& s = t[static_cast<size_t>(code + kSpan)];
    size_t n = 0;
    for (size_t i = 0; kPrefix[i] != '\0'; ++i) s[n++] = kPrefix[i];
    if (code < 0) s[n++] = '-';
    const int v = code < 0 ? -code : code;
    if (v >= 100) s[n++] = static_cast<char>('0' + v / 100);
    if (v >= 10) s[n++] = static_cast<char>('0' + v / 10 % 10);
    s[n++] = static_cast<char>('0' + v % 10);
    s[n] = '\0';
  }
  return t;
}

constexpr UnknownTable kUnknown = make_unknown_table();

const char* unknown(int primary) {
  if (primary < -kSpan || primary > kSpan) return "unknown error";
  return kUnknown[static_cast<size_t>(primary + kSpan)].data();
}

// SPECD_ERR_PRIMARY without its overflow on INT_MIN; a negative code whose low byte is 0 is no
// SPECD_E_* code at all, so it maps outside the table.
int primary_of(int rc) {
  if (rc >= 0) return rc;
  const int low = static_cast<int>((-static_cast<long long>(rc)) & 0xff);
  return low == 0 ? -(kSpan + 1) : -low;
}

}  // namespace

const char* error_message(int rc) {
  const int primary = primary_of(rc);
#define SPECD_MESSAGE_CASE(name, value, msg) \
  case value:                                \
    return msg;
  switch (primary) {
    case SPECD_OK:
      return "ok";
    SPECD_ERROR_MAP(SPECD_MESSAGE_CASE)
    default:
      return unknown(primary);
  }
#undef SPECD_MESSAGE_CASE
}

const char* error_name(int rc) {
  const int primary = primary_of(rc);
#define SPECD_NAME_CASE(name, value, msg) \
  case value:                             \
    return #name;
  switch (primary) {
    case SPECD_OK:
      return "OK";
    SPECD_ERROR_MAP(SPECD_NAME_CASE)
    default:
      return unknown(primary);
  }
#undef SPECD_NAME_CASE
}

}  // namespace specd::clients
