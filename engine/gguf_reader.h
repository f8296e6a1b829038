// GgufFile: a validated, read-only view of a GGUF v2/v3 file (mmap or caller memory).
//
// Every count, length, offset and type is checked against the file size before it is used, so a
// truncated or hostile file yields a named error (SPECD_E_BAD_MODEL, message such as "bad magic",
// "truncated in metadata", "tensor data out of bounds") and never a crash or a huge allocation.
#pragma once

#include "kernels/ggml_type.h"
#include "kernels/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace specd::engine {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

// One metadata value. Scalars are widened into i/u/f; strings point into the file's bytes.
// Arrays of scalars keep a pointer to their packed little-endian elements in the file;
// arrays of strings are indexed into `strings`. Nested arrays are rejected by the reader.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  int64_t i = 0;                 // signed integer types and BOOL (0/1)
  uint64_t u = 0;                // unsigned integer types and BOOL (0/1)
  double f = 0.0;                // FLOAT32/FLOAT64 (also set for integer types)
  std::string_view str;          // STRING
  GgufValueType elem_type = GgufValueType::UINT8;  // ARRAY: element type
  uint64_t count = 0;            // ARRAY: element count
  const uint8_t* elems = nullptr;  // ARRAY of scalars: packed elements
  std::vector<std::string_view> strings;  // ARRAY of STRING
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;           // relative to the start of the data section
  const uint8_t* data = nullptr; // absolute pointer, checked to lie inside the file
  size_t nbytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Map and validate a file. Errors: SPECD_E_IO (cannot open/map), SPECD_E_BAD_MODEL (anything malformed).
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Validate caller memory, which must outlive the GgufFile (used by tests and the fuzz target).
  static Result<std::unique_ptr<GgufFile>> from_memory(const uint8_t* data, size_t size);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  const std::vector<GgufKv>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  std::span<const uint8_t> bytes() const { return {base_, size_}; }

  const GgufValue* find(std::string_view key) const;
  const GgufTensorInfo* tensor(std::string_view name) const;

  // Typed look-ups: nullopt when the key is absent or has a type that cannot represent the request
  // (an integer getter accepts any integer type whose value fits; get_float accepts ints and floats).
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  // Element j of a numeric array as double / int64 (j < count is the caller's job).
  static double array_float(const GgufValue& v, uint64_t j);
  static int64_t array_int(const GgufValue& v, uint64_t j);

 private:
  GgufFile() = default;
  Status parse();

  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<GgufKv> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace specd::engine
