// libFuzzer target for the GGUF reader: any input must parse or fail with a named error, never crash.
#include "engine/gguf_reader.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using specd::engine::GgufFile;
using specd::engine::GgufValueType;

namespace {

// Reads every byte a caller of a successful parse could reach, so ASan checks each pointer.
uint64_t touch_all(const GgufFile& f) {
  uint64_t sum = f.version() + f.alignment();
  for (const auto& t : f.tensors()) sum += t.data[0] + t.data[t.nbytes - 1] + static_cast<uint64_t>(t.n_elements());
  for (const auto& kv : f.metadata()) {
    const auto& v = kv.value;
    for (char c : kv.key) sum += static_cast<uint8_t>(c);
    for (char c : v.str) sum += static_cast<uint8_t>(c);
    for (auto s : v.strings)
      for (char c : s) sum += static_cast<uint8_t>(c);
    if (v.type == GgufValueType::ARRAY && v.elem_type != GgufValueType::STRING) {
      for (uint64_t j = 0; j < v.count; ++j)
        sum += static_cast<uint64_t>(GgufFile::array_int(v, j)) + static_cast<uint64_t>(GgufFile::array_float(v, j) != 0);
    }
    // The typed getters look the key up again and must agree with the value's own type.
    sum += f.get_uint(kv.key).value_or(0) + static_cast<uint64_t>(f.get_int(kv.key).value_or(0));
    sum += f.get_bool(kv.key).value_or(false) + f.get_string(kv.key).value_or("").size();
  }
  for (const auto& t : f.tensors())
    if (f.tensor(t.name) == nullptr) std::abort();  // names are unique, so look-up must find each
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy of exactly `size` bytes, so ASan catches reads past the end of the input.
  std::vector<uint8_t> copy(data, data + size);
  auto r = GgufFile::from_memory(copy.data(), copy.size());
  if (r) {
    volatile uint64_t sink = touch_all(**r);
    (void)sink;
  } else if (r.error().code != SPECD_E_BAD_MODEL && r.error().code != SPECD_E_UNSUPPORTED) {
    std::abort();  // every failure on file contents must carry one of these two codes
  }
  return 0;
}
