// Stop-string matching and hold-back for the runtime's detokenized output (daemon/decode_runtime.cpp).
#include "daemon/stop_strings.h"

#include <algorithm>

namespace specd::daemon {

StopMatch find_stop(std::string_view text, size_t from, const std::vector<std::string>& stops) {
  StopMatch first;
  for (const std::string& x : stops) {
    if (x.empty()) continue;
    const size_t at = text.find(x, from >= x.size() - 1 ? from - (x.size() - 1) : 0);
    if (at < first.at) first = StopMatch{at, x.size()};
  }
  return first;
}

size_t stop_safe_length(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& x : stops) {
    // A full match is find_stop's; here only proper prefixes of x, longest first.
    for (size_t k = std::min(x.size() - (x.empty() ? 0 : 1), text.size()); k > hold; --k) {
      if (text.substr(text.size() - k) == std::string_view(x).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return text.size() - hold;
}

}  // namespace specd::daemon
