// GgufWriter: builds a GGUF v3 file (metadata + tensors) and writes it in one pass.
#pragma once

#include "engine/ggml_type.h"
#include "engine/result.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace specd::engine {

class GgufWriter {
 public:
  // Metadata setters; a key set twice keeps the last value, in the position of the first.
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_array_string(const std::string& key, const std::vector<std::string>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_alignment(uint32_t alignment);  // also writes general.alignment; default 32

  // Add a tensor; ne[0] is the innermost dimension (a [out, in] matrix is ne = {in, out}).
  // `data` is borrowed until write() returns and must hold exactly ggml_row_bytes(type, ne[0]) * rows bytes.
  // Errors: SPECD_E_INVALID_ARG for a duplicate name, bad dims or a wrong data size.
  Status add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                    std::span<const uint8_t> data);

  // Write the file (to path + ".tmp", then rename). Errors: SPECD_E_IO.
  Status write(const std::string& path) const;

 private:
  struct Kv;
  struct Tensor;
  Kv& slot(const std::string& key);
  std::vector<Kv> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(GgufWriter&&) noexcept;
};

}  // namespace specd::engine
