// Byte-level BPE's byte alphabet (GPT-2's bytes_to_unicode), both directions.
#include "engine/byte_level.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace specd::engine {
namespace {

// GPT-2 keeps '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF as themselves and gives the other 68 bytes
// the code points 256, 257, ... in byte order.
struct Table {
  std::array<uint32_t, 256> cpt{};
  std::array<int16_t, 324> byte{};  // code point -> byte, -1 outside the table (max code point 323)
  Table() {
    byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool kept = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      cpt[b] = kept ? b : next++;
      byte[cpt[b]] = static_cast<int16_t>(b);
    }
  }
};

const Table& table() {
  static const Table t;
  return t;
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {  // the table's code points are all below U+0800
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, table().cpt[static_cast<uint8_t>(c)]);
  return out;
}

std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c0 = static_cast<uint8_t>(text[i]);
    uint32_t cp = c0;
    size_t n = 1;
    if ((c0 & 0xE0) == 0xC0 && i + 1 < text.size() && (static_cast<uint8_t>(text[i + 1]) & 0xC0) == 0x80) {
      cp = ((c0 & 0x1Fu) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu);
      n = 2;
    } else if (c0 >= 0x80) {
      // Longer sequences and stray bytes lie outside the table: copy the whole sequence unchanged.
      n = c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : 1;
      n = std::min(n, text.size() - i);
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    const int16_t b = cp < table().byte.size() ? table().byte[cp] : -1;
    if (b >= 0) out += static_cast<char>(b);
    else out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace specd::engine
