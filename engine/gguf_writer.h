// GgufWriter: builds a GGUF v3 file (metadata + tensors) and writes it in one pass.
#pragma once

#include "kernels/ggml_type.h"
#include "kernels/result.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace specd::engine {

struct GgufKv;  // engine/gguf_reader.h

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
  // Copy any metadata value (scalars, strings, arrays of any element type) as a GgufFile holds it;
  // used by converters. Scalars are taken from u (unsigned types, BOOL), i (signed) or f (floats).
  // Copying general.alignment sets the alignment write() uses. Errors: SPECD_E_INVALID_ARG for a
  // type GGUF does not define, a nested array, or an array whose elements are missing.
  Status copy_kv(const GgufKv& kv);

  // Add a tensor; ne[0] is the innermost dimension (a [out, in] matrix is ne = {in, out}).
  // `data` is borrowed until write() returns and must hold exactly ggml_row_bytes(type, ne[0]) * rows bytes.
  // Errors: SPECD_E_INVALID_ARG for a duplicate name, bad dims or a wrong data size.
  Status add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                    std::span<const uint8_t> data);

  // Write the file (to path + ".tmp", then rename). Tensor data is streamed from the borrowed spans,
  // so the file is never assembled in memory. Errors: SPECD_E_IO; SPECD_E_INVALID_ARG when
  // general.alignment is not an unsigned power of two of at most 1 MiB (what the reader accepts).
  Status write(const std::string& path) const;

 private:
  struct Kv;
  struct Tensor;
  Kv& slot(const std::string& key);
  std::vector<uint8_t> encode_head(uint64_t alignment) const;
  Status write_file(const std::string& path, const std::vector<uint8_t>& head, uint64_t alignment) const;
  std::vector<Kv> kv_;
  std::vector<Tensor> tensors_;
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(GgufWriter&&) noexcept;
};

}  // namespace specd::engine
