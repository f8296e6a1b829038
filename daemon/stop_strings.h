// Stop strings in generated text: where one matched, and how much text may be shown while a stop
// string could still be forming (OpenAI and Ollama strip a matched stop string from the output).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace specd::daemon {

struct StopMatch {
  size_t at = std::string_view::npos;  // where the matched stop string starts; npos: none
  size_t length = 0;                   // its length in bytes
  bool found() const { return at != std::string_view::npos; }
};

// The earliest stop string that ends after text[from]. Matches that end before `from` were found
// by earlier calls, so only the tail that could hold a new one is searched.
StopMatch find_stop(std::string_view text, size_t from, const std::vector<std::string>& stops);

// The length of text that can be shown: all of it but the longest tail that is the start of a
// stop string (that tail could become a match with the next token, and would then be stripped).
size_t stop_safe_length(std::string_view text, const std::vector<std::string>& stops);

}  // namespace specd::daemon
