// GgufFile: maps a GGUF v2/v3 file and validates every header field before anything uses it.
#include "engine/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>

namespace specd::engine {

// memcpy of the raw bytes is how every multi-byte value is decoded, which is only right on a
// little-endian host (GGUF is little-endian; specd runs on x86-64).
static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace {

constexpr uint64_t kMaxElements = uint64_t{1} << 62;  // keeps n_elements() and byte sizes far from overflow
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;
// The smallest possible encodings, used to reject counts that cannot fit in the bytes left:
// a key (8-byte length, empty) + type + a 1-byte value; a name + n_dims + one dim + type + offset.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

// A name from the file made safe for an error message: non-printable bytes escaped, long names cut.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < 96; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (out.size() >= 96) out += "...";
  return out;
}

// A bounds-checked forward reader; a failed read leaves the position unchanged.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  const uint8_t* here() const { return base_ + pos_; }
  template <class T>
  bool read(T* out) {
    if (left() < sizeof(T)) return false;
    std::memcpy(out, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // Callers check n <= left() first.
  void skip(size_t n) { pos_ += n; }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

// Reads a GGUF string; `section` and `what` name it in errors.
Result<std::string_view> read_string(Cursor& c, const char* section, const std::string& what) {
  uint64_t len = 0;
  if (!c.read(&len)) return make_error(SPECD_E_BAD_MODEL, "truncated in %s: %s", section, what.c_str());
  if (len > c.left()) {
    return make_error(SPECD_E_BAD_MODEL, "string length out of bounds: %s (%llu bytes, %zu left)", what.c_str(),
                      static_cast<unsigned long long>(len), c.left());
  }
  std::string_view s(reinterpret_cast<const char*>(c.here()), static_cast<size_t>(len));
  c.skip(static_cast<size_t>(len));
  return s;
}

// Bytes of one scalar of type t; 0 for STRING, ARRAY and numbers GGUF does not define.
size_t scalar_size(uint32_t t) {
  switch (static_cast<GgufValueType>(t)) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL:
      return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16:
      return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32:
      return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64:
      return 8;
    case GgufValueType::STRING: case GgufValueType::ARRAY:
      return 0;
  }
  return 0;
}

bool is_integer(GgufValueType t) {
  return t != GgufValueType::BOOL && t != GgufValueType::FLOAT32 && t != GgufValueType::FLOAT64 &&
         scalar_size(static_cast<uint32_t>(t)) != 0;
}
bool is_signed(GgufValueType t) {
  return t == GgufValueType::INT8 || t == GgufValueType::INT16 || t == GgufValueType::INT32 ||
         t == GgufValueType::INT64;
}

struct Widened {
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
};

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Decodes one scalar of type t (scalar_size(t) > 0) at p into all three widened forms.
Widened widen(GgufValueType t, const uint8_t* p) {
  Widened w;
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::BOOL: w.u = load<uint8_t>(p); break;
    case GgufValueType::UINT16: w.u = load<uint16_t>(p); break;
    case GgufValueType::UINT32: w.u = load<uint32_t>(p); break;
    case GgufValueType::UINT64: w.u = load<uint64_t>(p); break;
    case GgufValueType::INT8: w.i = load<int8_t>(p); break;
    case GgufValueType::INT16: w.i = load<int16_t>(p); break;
    case GgufValueType::INT32: w.i = load<int32_t>(p); break;
    case GgufValueType::INT64: w.i = load<int64_t>(p); break;
    case GgufValueType::FLOAT32: w.f = load<float>(p); return w;
    case GgufValueType::FLOAT64: w.f = load<double>(p); return w;
    case GgufValueType::STRING: case GgufValueType::ARRAY: return w;
  }
  if (is_signed(t)) {
    w.u = static_cast<uint64_t>(w.i);  // getters check the sign before trusting u
    w.f = static_cast<double>(w.i);
  } else {
    w.i = static_cast<int64_t>(w.u);  // getters check the range before trusting i
    w.f = static_cast<double>(w.u);
  }
  return w;
}

Status check_bools(const uint8_t* p, uint64_t n, const std::string& key) {
  for (uint64_t j = 0; j < n; ++j)
    if (p[j] > 1) return make_error(SPECD_E_BAD_MODEL, "bad bool value %u: %s", static_cast<unsigned>(p[j]), key.c_str());
  return {};
}

Status read_array(Cursor& c, GgufValue* v, const std::string& key) {
  uint32_t et = 0;
  if (!c.read(&et) || !c.read(&v->count)) return make_error(SPECD_E_BAD_MODEL, "truncated in metadata: %s", key.c_str());
  if (et == static_cast<uint32_t>(GgufValueType::ARRAY)) return make_error(SPECD_E_BAD_MODEL, "nested array: %s", key.c_str());
  v->elem_type = static_cast<GgufValueType>(et);
  const bool is_str = v->elem_type == GgufValueType::STRING;
  const size_t elem = is_str ? 8 : scalar_size(et);  // a string takes at least its length field
  if (elem == 0) return make_error(SPECD_E_BAD_MODEL, "unknown metadata type %u: %s", et, key.c_str());
  if (v->count > c.left() / elem) {
    return make_error(SPECD_E_BAD_MODEL, "array count out of bounds: %s (%llu elements)", key.c_str(),
                      static_cast<unsigned long long>(v->count));
  }
  if (!is_str) {
    v->elems = c.here();
    if (v->elem_type == GgufValueType::BOOL) SPECD_TRY(check_bools(c.here(), v->count, key));
    c.skip(static_cast<size_t>(v->count * elem));
    return {};
  }
  v->strings.reserve(static_cast<size_t>(v->count));  // bounded above by the bytes left / 8
  for (uint64_t j = 0; j < v->count; ++j) {
    auto s = read_string(c, "metadata", key);
    if (!s) return s.error();
    v->strings.push_back(*s);
  }
  return {};
}

Status read_value(Cursor& c, GgufValue* v, const std::string& key) {
  if (v->type == GgufValueType::STRING) {
    auto s = read_string(c, "metadata", key);
    if (!s) return s.error();
    v->str = *s;
    return {};
  }
  if (v->type == GgufValueType::ARRAY) return read_array(c, v, key);
  const size_t n = scalar_size(static_cast<uint32_t>(v->type));
  if (n == 0) {
    return make_error(SPECD_E_BAD_MODEL, "unknown metadata type %u: %s", static_cast<uint32_t>(v->type), key.c_str());
  }
  if (c.left() < n) return make_error(SPECD_E_BAD_MODEL, "truncated in metadata: %s", key.c_str());
  if (v->type == GgufValueType::BOOL) SPECD_TRY(check_bools(c.here(), 1, key));
  const Widened w = widen(v->type, c.here());
  v->i = w.i;
  v->u = w.u;
  v->f = w.f;
  c.skip(n);
  return {};
}

Status check_count(uint64_t n, uint64_t min_bytes, size_t left, const char* what) {
  if (n > left / min_bytes) {
    return make_error(SPECD_E_BAD_MODEL, "absurd %s count %llu for %zu bytes left", what,
                      static_cast<unsigned long long>(n), left);
  }
  return {};
}

Status parse_header(Cursor& c, uint32_t* version, uint64_t* n_tensors, uint64_t* n_kv) {
  uint8_t magic[4] = {};
  if (!c.read(&magic)) return make_error(SPECD_E_BAD_MODEL, "truncated in header");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return make_error(SPECD_E_BAD_MODEL, "bad magic (not a GGUF file)");  // never the bytes: the file may be a secret
  }
  if (!c.read(version)) return make_error(SPECD_E_BAD_MODEL, "truncated in header");
  // v1 used 32-bit counts; v2 and v3 share this layout (v3 only added big-endian files, which fail here).
  if (*version != 2 && *version != 3) return make_error(SPECD_E_BAD_MODEL, "unsupported gguf version %u", *version);
  if (!c.read(n_tensors) || !c.read(n_kv)) return make_error(SPECD_E_BAD_MODEL, "truncated in header");
  SPECD_TRY(check_count(*n_tensors, kMinTensorInfoBytes, c.left(), "tensor"));
  return check_count(*n_kv, kMinKvBytes, c.left(), "metadata");
}

Status parse_metadata(Cursor& c, uint64_t n_kv, std::vector<GgufKv>* kvs) {
  kvs->reserve(static_cast<size_t>(n_kv));  // checked against the bytes left by parse_header
  std::unordered_set<std::string_view> seen;
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKv kv;
    auto key = read_string(c, "metadata", "key of entry " + std::to_string(i));
    if (!key) return key.error();
    kv.key = *key;
    const std::string name = printable(kv.key);
    if (!seen.insert(kv.key).second) return make_error(SPECD_E_BAD_MODEL, "duplicate metadata key: %s", name.c_str());
    uint32_t type = 0;
    if (!c.read(&type)) return make_error(SPECD_E_BAD_MODEL, "truncated in metadata: %s", name.c_str());
    kv.value.type = static_cast<GgufValueType>(type);
    SPECD_TRY(read_value(c, &kv.value, name));
    kvs->push_back(std::move(kv));
  }
  return {};
}

// general.alignment if present (an integer, a power of two, at most 1 MiB), else GGUF's default 32.
Result<size_t> find_alignment(const std::vector<GgufKv>& kvs) {
  for (const auto& kv : kvs) {
    if (kv.key != "general.alignment") continue;
    const GgufValue& v = kv.value;
    if (!is_integer(v.type)) return make_error(SPECD_E_BAD_MODEL, "bad alignment: type %u", static_cast<uint32_t>(v.type));
    if ((is_signed(v.type) && v.i <= 0) || !std::has_single_bit(v.u) || v.u > kMaxAlignment) {
      return is_signed(v.type) ? make_error(SPECD_E_BAD_MODEL, "bad alignment %lld", static_cast<long long>(v.i))
                               : make_error(SPECD_E_BAD_MODEL, "bad alignment %llu", static_cast<unsigned long long>(v.u));
    }
    return static_cast<size_t>(v.u);
  }
  return size_t{32};
}

// Dimensions, type and byte size of one tensor; the caller has read the name.
Status read_shape(Cursor& c, GgufTensorInfo* t, const std::string& name) {
  if (!c.read(&t->n_dims)) return make_error(SPECD_E_BAD_MODEL, "truncated in tensor infos: %s", name.c_str());
  if (t->n_dims < 1 || t->n_dims > 4) {
    return make_error(SPECD_E_BAD_MODEL, "n_dims %u out of range: %s", t->n_dims, name.c_str());
  }
  uint64_t elements = 1;
  for (uint32_t d = 0; d < t->n_dims; ++d) {
    if (!c.read(&t->ne[d])) return make_error(SPECD_E_BAD_MODEL, "truncated in tensor infos: %s", name.c_str());
    const int64_t n = t->ne[d];
    if (n <= 0 || static_cast<uint64_t>(n) > kMaxElements / elements) {
      return make_error(SPECD_E_BAD_MODEL, "bad dimension ne[%u]=%lld: %s", d, static_cast<long long>(n), name.c_str());
    }
    elements *= static_cast<uint64_t>(n);
  }
  uint32_t type = 0;
  if (!c.read(&type)) return make_error(SPECD_E_BAD_MODEL, "truncated in tensor infos: %s", name.c_str());
  if (!ggml_type_supported(type)) {
    return make_error(SPECD_E_UNSUPPORTED, "unsupported tensor type %u: %s", type, name.c_str());
  }
  t->type = static_cast<GgmlType>(type);
  if (t->ne[0] % ggml_block_elems(t->type) != 0) {
    return make_error(SPECD_E_BAD_MODEL, "row size not a multiple of block size: %s", name.c_str());
  }
  // Whole blocks times bytes per block; 2^62 F32 elements is already 2^64 bytes, hence the check.
  const uint64_t blocks = elements / static_cast<uint64_t>(ggml_block_elems(t->type));
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(ggml_block_bytes(t->type)), &nbytes)) {
    return make_error(SPECD_E_BAD_MODEL, "tensor data out of bounds: %s", name.c_str());
  }
  t->nbytes = static_cast<size_t>(nbytes);
  return {};
}

Status parse_tensor_infos(Cursor& c, uint64_t n, size_t alignment, std::vector<GgufTensorInfo>* out) {
  SPECD_TRY(check_count(n, kMinTensorInfoBytes, c.left(), "tensor"));
  out->reserve(static_cast<size_t>(n));
  std::unordered_set<std::string_view> seen;
  for (uint64_t i = 0; i < n; ++i) {
    GgufTensorInfo t;
    auto s = read_string(c, "tensor infos", "name of tensor " + std::to_string(i));
    if (!s) return s.error();
    t.name = *s;
    const std::string name = printable(t.name);
    if (!seen.insert(t.name).second) return make_error(SPECD_E_BAD_MODEL, "duplicate tensor name: %s", name.c_str());
    SPECD_TRY(read_shape(c, &t, name));
    if (!c.read(&t.offset)) return make_error(SPECD_E_BAD_MODEL, "truncated in tensor infos: %s", name.c_str());
    if (t.offset % alignment != 0) return make_error(SPECD_E_BAD_MODEL, "tensor offset not aligned: %s", name.c_str());
    out->push_back(t);
  }
  return {};
}

// Points each tensor into the data section, which starts at the first aligned byte after the infos.
Status place_tensors(const uint8_t* base, size_t size, size_t infos_end, size_t alignment,
                     std::vector<GgufTensorInfo>* tensors) {
  const size_t data_start = (infos_end + alignment - 1) / alignment * alignment;  // alignment <= 1 MiB: no overflow
  const size_t data_size = data_start <= size ? size - data_start : 0;
  for (auto& t : *tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return make_error(SPECD_E_BAD_MODEL, "tensor data out of bounds: %s", printable(t.name).c_str());
    }
    t.data = base + data_start + t.offset;
  }
  return {};
}

// Closes a file descriptor when the scope ends.
struct FdGuard {
  int fd;
  ~FdGuard() { ::close(fd); }
};

}  // namespace

Status GgufFile::parse() {
  Cursor c(base_, size_);
  uint64_t n_tensors = 0, n_kv = 0;
  SPECD_TRY(parse_header(c, &version_, &n_tensors, &n_kv));
  SPECD_TRY(parse_metadata(c, n_kv, &kv_));
  auto alignment = find_alignment(kv_);
  if (!alignment) return alignment.error();
  alignment_ = *alignment;
  SPECD_TRY(parse_tensor_infos(c, n_tensors, alignment_, &tensors_));
  return place_tensors(base_, size_, c.pos(), alignment_, &tensors_);
}

Result<std::unique_ptr<GgufFile>> GgufFile::from_memory(const uint8_t* data, size_t size) {
  if (data == nullptr && size != 0) return make_error(SPECD_E_INVALID_ARG, "null buffer of %zu bytes", size);
  std::unique_ptr<GgufFile> f(new GgufFile());  // the constructor is private, so no make_unique
  f->base_ = data;
  f->size_ = size;
  SPECD_TRY(f->parse());
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(SPECD_E_IO, "cannot open %s: %s", path.c_str(), std::strerror(errno));
  FdGuard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(SPECD_E_IO, "cannot stat %s: %s", path.c_str(), std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(SPECD_E_IO, "not a regular file: %s", path.c_str());
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {  // mmap rejects length 0; an empty file fails in parse() as "truncated in header"
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return make_error(SPECD_E_IO, "cannot map %s: %s", path.c_str(), std::strerror(errno));
    f->base_ = static_cast<const uint8_t*>(p);
    f->mapped_ = true;
  }
  Status st_parse = f->parse();
  if (!st_parse) return make_error(st_parse.error().code, "%s: %s", path.c_str(), st_parse.error().message.c_str());
  return f;
}

GgufFile::~GgufFile() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !is_integer(v->type) || (is_signed(v->type) && v->i < 0)) return std::nullopt;
  return v->u;
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !is_integer(v->type)) return std::nullopt;
  if (!is_signed(v->type) && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v->i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type == GgufValueType::BOOL || scalar_size(static_cast<uint32_t>(v->type)) == 0) return std::nullopt;
  return v->f;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufValueType::BOOL) return std::nullopt;
  return v->u != 0;
}

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufValueType::STRING) return std::nullopt;
  return v->str;
}

double GgufFile::array_float(const GgufValue& v, uint64_t j) {
  const size_t n = scalar_size(static_cast<uint32_t>(v.elem_type));
  if (v.type != GgufValueType::ARRAY || n == 0 || v.elems == nullptr) return 0.0;
  return widen(v.elem_type, v.elems + j * n).f;
}

int64_t GgufFile::array_int(const GgufValue& v, uint64_t j) {
  const size_t n = scalar_size(static_cast<uint32_t>(v.elem_type));
  if (v.type != GgufValueType::ARRAY || n == 0 || v.elems == nullptr) return 0;
  const Widened w = widen(v.elem_type, v.elems + j * n);
  if (v.elem_type != GgufValueType::FLOAT32 && v.elem_type != GgufValueType::FLOAT64) return w.i;
  // Float elements truncate toward zero; NaN and values outside int64 (a cast would be UB) give 0.
  constexpr double kLimit = 9223372036854775808.0;  // 2^63
  return (w.f > -kLimit && w.f < kLimit) ? static_cast<int64_t>(w.f) : 0;
}

}  // namespace specd::engine
