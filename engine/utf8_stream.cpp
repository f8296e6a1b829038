// Utf8Stream: emits token bytes in chunks that end on UTF-8 character boundaries.
#include "engine/utf8_stream.h"

#include <cstddef>
#include <cstdint>

namespace specd::engine {
namespace {

// Length of the sequence a lead byte starts, or 0 for a byte that cannot start a multi-byte
// character (ASCII, a continuation byte, or an invalid lead such as 0xC0/0xC1 or 0xF5..0xFF).
size_t lead_len(uint8_t c) {
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

bool is_continuation(uint8_t c) { return (c & 0xC0) == 0x80; }

// How many bytes at the end of s form the start of a character still waiting for continuation
// bytes. Anything else (complete or invalid) is released at once, so invalid bytes pass through.
size_t incomplete_tail(const std::string& s) {
  const size_t look = s.size() < 3 ? s.size() : 3;  // a held tail is at most 3 bytes of a 4-byte char
  for (size_t i = 1; i <= look; ++i) {
    const auto c = static_cast<uint8_t>(s[s.size() - i]);
    if (is_continuation(c)) continue;
    return lead_len(c) > i ? i : 0;
  }
  return 0;
}

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  const size_t ready = pending_.size() - incomplete_tail(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace specd::engine
