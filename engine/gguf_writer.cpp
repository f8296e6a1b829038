// GgufWriter: encodes metadata and tensor infos for GGUF v3 and streams tensor data to disk.
#include "engine/gguf_writer.h"

#include "engine/gguf_reader.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace specd::engine {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

struct GgufWriter::Kv {
  std::string key;
  GgufValueType type = GgufValueType::UINT8;
  std::vector<uint8_t> payload;  // the value exactly as it follows the type field on disk
};

struct GgufWriter::Tensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;
  std::span<const uint8_t> data;
};

namespace {

constexpr uint64_t kMaxElements = uint64_t{1} << 62;  // the reader's limit
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;  // the reader's limit
constexpr size_t kWriteChunk = size_t{64} << 20;       // bounded fwrite calls for multi-GB tensors

// resize + memcpy rather than vector::insert, which trips GCC 12's -Warray-bounds false positives.
void append(std::vector<uint8_t>& b, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = b.size();
  b.resize(at + n);
  std::memcpy(b.data() + at, p, n);
}

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  append(b, &v, sizeof v);
}

void put_string(std::vector<uint8_t>& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  append(b, s.data(), s.size());
}

// Bytes of one scalar of type t; 0 for STRING, ARRAY and undefined numbers.
size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: case GgufValueType::ARRAY: return 0;
  }
  return 0;
}

// Encodes a scalar from the widened field that is exact for its type.
void put_scalar(std::vector<uint8_t>& b, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::UINT8: put(b, static_cast<uint8_t>(v.u)); break;
    case GgufValueType::BOOL: put(b, static_cast<uint8_t>(v.u != 0)); break;
    case GgufValueType::UINT16: put(b, static_cast<uint16_t>(v.u)); break;
    case GgufValueType::UINT32: put(b, static_cast<uint32_t>(v.u)); break;
    case GgufValueType::UINT64: put(b, v.u); break;
    case GgufValueType::INT8: put(b, static_cast<int8_t>(v.i)); break;
    case GgufValueType::INT16: put(b, static_cast<int16_t>(v.i)); break;
    case GgufValueType::INT32: put(b, static_cast<int32_t>(v.i)); break;
    case GgufValueType::INT64: put(b, v.i); break;
    case GgufValueType::FLOAT32: put(b, static_cast<float>(v.f)); break;
    case GgufValueType::FLOAT64: put(b, v.f); break;
    case GgufValueType::STRING: case GgufValueType::ARRAY: break;
  }
}

Status put_array(std::vector<uint8_t>& b, const GgufValue& v, const std::string& key) {
  put(b, static_cast<uint32_t>(v.elem_type));
  put<uint64_t>(b, v.count);
  if (v.elem_type == GgufValueType::STRING) {
    if (v.strings.size() != v.count) return make_error(SPECD_E_INVALID_ARG, "string array count mismatch: %s", key.c_str());
    for (std::string_view s : v.strings) put_string(b, s);
    return {};
  }
  const size_t n = scalar_size(v.elem_type);
  if (n == 0) {
    return make_error(SPECD_E_INVALID_ARG, "bad array element type %u: %s", static_cast<uint32_t>(v.elem_type), key.c_str());
  }
  if (v.count > 0 && v.elems == nullptr) return make_error(SPECD_E_INVALID_ARG, "array elements missing: %s", key.c_str());
  const size_t start = b.size();
  append(b, v.elems, static_cast<size_t>(v.count * n));
  if (v.elem_type == GgufValueType::BOOL)  // the reader rejects any other byte
    for (size_t j = start; j < b.size(); ++j) b[j] = b[j] != 0;
  return {};
}

// general.alignment as write() uses it: an unsigned power of two no larger than the reader accepts.
Result<uint64_t> alignment_value(GgufValueType type, const std::vector<uint8_t>& payload) {
  const bool is_unsigned = type == GgufValueType::UINT8 || type == GgufValueType::UINT16 ||
                           type == GgufValueType::UINT32 || type == GgufValueType::UINT64;
  uint64_t a = 0;
  if (is_unsigned) std::memcpy(&a, payload.data(), std::min(payload.size(), sizeof a));
  if (!is_unsigned || !std::has_single_bit(a) || a > kMaxAlignment) {
    return make_error(SPECD_E_INVALID_ARG, "bad alignment in general.alignment");
  }
  return a;
}

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

Status io_error(const char* what, const std::string& path) {
  return make_error(SPECD_E_IO, "%s %s: %s", what, path.c_str(), std::strerror(errno));
}

Status write_bytes(FILE* f, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    const size_t k = std::min(n, kWriteChunk);
    if (std::fwrite(p, 1, k, f) != k) return io_error("cannot write", path);
    p += k;
    n -= k;
  }
  return {};
}

Status write_padding(FILE* f, uint64_t n, const std::string& path) {
  static const uint8_t zeros[4096] = {};
  while (n > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
    SPECD_TRY(write_bytes(f, zeros, k, path));
    n -= k;
  }
  return {};
}

}  // namespace

GgufWriter::GgufWriter() = default;
GgufWriter::~GgufWriter() = default;
GgufWriter::GgufWriter(GgufWriter&&) noexcept = default;

GgufWriter::Kv& GgufWriter::slot(const std::string& key) {
  for (auto& kv : kv_) {
    if (kv.key == key) {
      kv.payload.clear();
      return kv;
    }
  }
  kv_.push_back(Kv{key, GgufValueType::UINT8, {}});
  return kv_.back();
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::UINT32;
  put(kv.payload, v);
}

void GgufWriter::set_i32(const std::string& key, int32_t v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::INT32;
  put(kv.payload, v);
}

void GgufWriter::set_u64(const std::string& key, uint64_t v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::UINT64;
  put(kv.payload, v);
}

void GgufWriter::set_f32(const std::string& key, float v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::FLOAT32;
  put(kv.payload, v);
}

void GgufWriter::set_bool(const std::string& key, bool v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::BOOL;
  put(kv.payload, static_cast<uint8_t>(v));
}

void GgufWriter::set_string(const std::string& key, const std::string& v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::STRING;
  put_string(kv.payload, v);
}

void GgufWriter::set_array_string(const std::string& key, const std::vector<std::string>& v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::ARRAY;
  put(kv.payload, static_cast<uint32_t>(GgufValueType::STRING));
  put<uint64_t>(kv.payload, v.size());
  for (const auto& s : v) put_string(kv.payload, s);
}

void GgufWriter::set_array_f32(const std::string& key, const std::vector<float>& v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::ARRAY;
  put(kv.payload, static_cast<uint32_t>(GgufValueType::FLOAT32));
  put<uint64_t>(kv.payload, v.size());
  for (float x : v) put(kv.payload, x);
}

void GgufWriter::set_array_i32(const std::string& key, const std::vector<int32_t>& v) {
  Kv& kv = slot(key);
  kv.type = GgufValueType::ARRAY;
  put(kv.payload, static_cast<uint32_t>(GgufValueType::INT32));
  put<uint64_t>(kv.payload, v.size());
  for (int32_t x : v) put(kv.payload, x);
}

void GgufWriter::set_alignment(uint32_t alignment) { set_u32("general.alignment", alignment); }

Status GgufWriter::copy_kv(const GgufKv& kv) {
  const std::string key(kv.key);
  std::vector<uint8_t> payload;
  const GgufValue& v = kv.value;
  if (v.type == GgufValueType::STRING) {
    put_string(payload, v.str);
  } else if (v.type == GgufValueType::ARRAY) {
    if (v.elem_type == GgufValueType::ARRAY) return make_error(SPECD_E_INVALID_ARG, "nested array: %s", key.c_str());
    SPECD_TRY(put_array(payload, v, key));
  } else if (scalar_size(v.type) != 0) {
    put_scalar(payload, v);
  } else {
    return make_error(SPECD_E_INVALID_ARG, "bad metadata type %u: %s", static_cast<uint32_t>(v.type), key.c_str());
  }
  Kv& s = slot(key);
  s.type = v.type;
  s.payload = std::move(payload);
  return {};
}

Status GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                              std::span<const uint8_t> data) {
  if (name.empty()) return make_error(SPECD_E_INVALID_ARG, "empty tensor name");
  for (const auto& t : tensors_)
    if (t.name == name) return make_error(SPECD_E_INVALID_ARG, "duplicate tensor name: %s", name.c_str());
  if (!ggml_type_supported(static_cast<uint32_t>(type))) {
    return make_error(SPECD_E_INVALID_ARG, "unsupported tensor type %u: %s", static_cast<uint32_t>(type), name.c_str());
  }
  if (ne.empty() || ne.size() > 4) return make_error(SPECD_E_INVALID_ARG, "n_dims %zu out of range: %s", ne.size(), name.c_str());
  uint64_t elements = 1;
  for (int64_t n : ne) {
    if (n <= 0 || static_cast<uint64_t>(n) > kMaxElements / elements) {
      return make_error(SPECD_E_INVALID_ARG, "bad dimension %lld: %s", static_cast<long long>(n), name.c_str());
    }
    elements *= static_cast<uint64_t>(n);
  }
  if (ne[0] % ggml_block_elems(type) != 0) {
    return make_error(SPECD_E_INVALID_ARG, "row size not a multiple of block size: %s", name.c_str());
  }
  const uint64_t blocks = elements / static_cast<uint64_t>(ggml_block_elems(type));
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(ggml_block_bytes(type)), &nbytes) || nbytes != data.size()) {
    return make_error(SPECD_E_INVALID_ARG, "tensor %s: data holds %zu bytes, shape needs %llu", name.c_str(),
                      data.size(), static_cast<unsigned long long>(nbytes));
  }
  tensors_.push_back(Tensor{name, type, std::move(ne), data});
  return {};
}

// Header, metadata and tensor infos are small, so they are built in memory and written at once.
std::vector<uint8_t> GgufWriter::encode_head(uint64_t alignment) const {
  std::vector<uint8_t> head;
  append(head, "GGUF", 4);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size());
  for (const auto& kv : kv_) {
    put_string(head, kv.key);
    put(head, static_cast<uint32_t>(kv.type));
    append(head, kv.payload.data(), kv.payload.size());
  }
  uint64_t offset = 0;  // relative to the data section; each tensor starts aligned
  for (const auto& t : tensors_) {
    put_string(head, t.name);
    put(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) put(head, n);
    put(head, static_cast<uint32_t>(t.type));
    put(head, offset);
    offset = align_up(offset + t.data.size(), alignment);
  }
  head.resize(align_up(head.size(), alignment), 0);
  return head;
}

Status GgufWriter::write(const std::string& path) const {
  uint64_t alignment = 32;
  for (const auto& kv : kv_) {
    if (kv.key != "general.alignment") continue;
    auto a = alignment_value(kv.type, kv.payload);
    if (!a) return a.error();
    alignment = *a;
  }
  const std::string tmp = path + ".tmp";
  Status s = write_file(tmp, encode_head(alignment), alignment);
  if (s && std::rename(tmp.c_str(), path.c_str()) != 0) s = io_error("cannot rename to", path);
  if (!s) std::remove(tmp.c_str());
  return s;
}

// Writes the prepared head and then each tensor's data padded to the alignment, then syncs.
Status GgufWriter::write_file(const std::string& path, const std::vector<uint8_t>& head, uint64_t alignment) const {
  FilePtr f(std::fopen(path.c_str(), "wb"));
  if (!f) return io_error("cannot create", path);
  SPECD_TRY(write_bytes(f.get(), head.data(), head.size(), path));
  for (const auto& t : tensors_) {
    SPECD_TRY(write_bytes(f.get(), t.data.data(), t.data.size(), path));
    SPECD_TRY(write_padding(f.get(), align_up(t.data.size(), alignment) - t.data.size(), path));
  }
  // Flush and sync before the rename so a crash never leaves a truncated file under the final name.
  if (std::fflush(f.get()) != 0 || ::fsync(fileno(f.get())) != 0) return io_error("cannot write", path);
  if (std::fclose(f.release()) != 0) return io_error("cannot close", path);
  return {};
}

}  // namespace specd::engine
