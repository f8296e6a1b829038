// Utf8Stream: turns a stream of token bytes into chunks that never split a UTF-8 character.
#pragma once

#include <string>
#include <string_view>

namespace specd::engine {

// Streaming-safe UTF-8: holds back the tail of a byte stream that ends inside a multi-byte
// character, so each emitted chunk is valid UTF-8 (invalid bytes pass through unchanged).
class Utf8Stream {
 public:
  // Append bytes; returns the longest prefix of the pending bytes that ends on a character boundary.
  std::string push(std::string_view bytes);
  // Whatever is still pending (an incomplete character at the end of generation).
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace specd::engine
