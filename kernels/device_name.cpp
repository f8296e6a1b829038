// parse_device: device names, in the kernels library so config checking needs no backend linked.
#include "kernels/device.h"

#include <charconv>

namespace specd::kernels {

Result<DeviceChoice> parse_device(std::string_view text) {
  if (text == "auto") return DeviceChoice{DeviceChoice::Kind::Auto, 0};
  if (text == "cpu") return DeviceChoice{DeviceChoice::Kind::Cpu, 0};
  if (text == "cuda") return DeviceChoice{DeviceChoice::Kind::Cuda, 0};
  if (text.starts_with("cuda:") && text.size() > 5) {
    int n = -1;
    const char* b = text.data() + 5;
    const char* e = text.data() + text.size();
    if (auto [p, ec] = std::from_chars(b, e, n); ec == std::errc() && p == e && n >= 0)
      return DeviceChoice{DeviceChoice::Kind::Cuda, n};
  }
  return make_error(SPECD_E_INVALID_ARG, "unknown device '%.*s' (expected auto, cpu, cuda or cuda:N)",
                    static_cast<int>(text.size()), text.data());
}

}  // namespace specd::kernels
