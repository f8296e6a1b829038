// Byte-level BPE's byte alphabet: GPT-2's table from the 256 byte values to printable code points.
#pragma once

#include <string>
#include <string_view>

namespace specd::engine {

// Each byte becomes the UTF-8 of its code point in GPT-2's bytes_to_unicode table (printable
// Latin-1 bytes stay themselves; the others map to U+0100 and up, so ' ' becomes 'Ġ').
std::string byte_level_encode(std::string_view bytes);
// The inverse; a code point outside the table (an added token's text) is kept as its UTF-8 bytes.
std::string byte_level_decode(std::string_view text);

}  // namespace specd::engine
