// libFuzzer target for the config parser: any text must give a Config or a SPECD_E_INVALID_ARG
// error naming the file, never a crash, a hang or an exception.
#include "daemon/config.h"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = specd::daemon::parse_config(text, "fuzz.toml");
  if (c) {
    // A parsed config names its default model among its models (or has none).
    if (!c->default_model.empty() && !c->models.count(c->default_model)) std::abort();
  } else if (c.error().code != SPECD_E_INVALID_ARG || c.error().message.rfind("fuzz.toml", 0) != 0) {
    std::abort();
  }
  return 0;
}
