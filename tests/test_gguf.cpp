// GGUF reader/writer tests: the real stories260K.gguf, writer round trips, hostile files, mutations.
#include <doctest/doctest.h>

#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "tests/test_support.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace specd;
using namespace specd::engine;
namespace st = specd::test;

namespace {

const std::vector<uint8_t>& real_file() {
  static const std::vector<uint8_t> bytes = st::read_file(st::model_path("stories260K.gguf"));
  return bytes;
}

template <class T>
void patch(std::vector<uint8_t>& b, size_t at, T v) {
  REQUIRE(at + sizeof v <= b.size());
  std::memcpy(b.data() + at, &v, sizeof v);
}

// Offset of the first occurrence of s in b (the tests patch fields found next to known names).
size_t find_bytes(const std::vector<uint8_t>& b, std::string_view s) {
  auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  REQUIRE(it != b.end());
  return static_cast<size_t>(it - b.begin());
}

// Parses a private copy of exactly the first n bytes, so ASan flags any read past the end.
specd::Error parse_error(const std::vector<uint8_t>& b, size_t n = SIZE_MAX) {
  std::vector<uint8_t> copy(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(std::min(n, b.size())));
  auto r = GgufFile::from_memory(copy.data(), copy.size());
  if (r) return specd::Error{SPECD_OK, "parsed"};
  return r.error();
}

void expect_error(const std::vector<uint8_t>& b, int code, const std::string& phrase) {
  const specd::Error e = parse_error(b);
  INFO("message: " << e.message);
  CHECK(e.code == code);
  CHECK(e.message.find(phrase) != std::string::npos);
}

// Hand-encodes GGUF fields for small hostile files.
struct Bytes {
  std::vector<uint8_t> b;
  // resize + memcpy: vector::insert here trips GCC 12's -Wstringop-overflow false positive.
  Bytes& raw(const void* p, size_t n) {
    const size_t at = b.size();
    b.resize(at + n);
    if (n) std::memcpy(b.data() + at, p, n);
    return *this;
  }
  template <class T>
  Bytes& put(T v) {
    return raw(&v, sizeof v);
  }
  Bytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).put<uint32_t>(4).put(v); }
  Bytes& pad(size_t a) {
    b.resize((b.size() + a - 1) / a * a, 0);
    return *this;
  }
};

// A one-tensor v3 file: header, the encoded metadata, tensor "t" (F32, ne {8}, offset 0), padding, data.
std::vector<uint8_t> tiny_file(uint64_t n_kv, const Bytes& kvs, size_t align = 32) {
  Bytes f;
  f.raw("GGUF", 4).put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(n_kv).raw(kvs.b.data(), kvs.b.size());
  f.str("t").put<uint32_t>(1).put<int64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
  f.pad(align);
  f.b.resize(f.b.size() + 32, 0x11);
  return f.b;
}

size_t value_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    default: return 8;
  }
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  if (a.type == GgufValueType::STRING) return a.str == b.str;
  if (a.type != GgufValueType::ARRAY) return a.i == b.i && a.u == b.u && std::memcmp(&a.f, &b.f, sizeof a.f) == 0;
  if (a.elem_type != b.elem_type || a.count != b.count) return false;
  if (a.elem_type == GgufValueType::STRING) return a.strings == b.strings;
  return a.count == 0 || std::memcmp(a.elems, b.elems, a.count * value_size(a.elem_type)) == 0;
}

void expect_same_files(const GgufFile& a, const GgufFile& b) {
  REQUIRE(a.metadata().size() == b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    CAPTURE(a.metadata()[i].key);
    CHECK(a.metadata()[i].key == b.metadata()[i].key);
    CHECK(same_value(a.metadata()[i].value, b.metadata()[i].value));
  }
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const GgufTensorInfo& x = a.tensors()[i];
    const GgufTensorInfo& y = b.tensors()[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    CHECK(x.type == y.type);
    CHECK(x.n_dims == y.n_dims);
    CHECK(std::equal(x.ne, x.ne + 4, y.ne));
    REQUIRE(x.nbytes == y.nbytes);
    CHECK(std::memcmp(x.data, y.data, x.nbytes) == 0);
  }
}

// Reads every byte a caller could reach: tensor ends, strings, array elements (ASan checks each).
uint64_t touch_all(const GgufFile& f) {
  uint64_t sum = 0;
  for (const auto& t : f.tensors()) sum += t.data[0] + t.data[t.nbytes - 1];
  for (const auto& kv : f.metadata()) {
    const GgufValue& v = kv.value;
    for (char c : kv.key) sum += static_cast<uint8_t>(c);
    for (char c : v.str) sum += static_cast<uint8_t>(c);
    for (auto s : v.strings) sum += s.size() ? static_cast<uint8_t>(s.back()) : 0;
    if (v.type == GgufValueType::ARRAY && v.elem_type != GgufValueType::STRING)
      for (uint64_t j = 0; j < v.count; ++j) sum += static_cast<uint64_t>(GgufFile::array_int(v, j));
  }
  return sum;
}

}  // namespace

TEST_CASE("ggml types: names round-trip in either case; unknown names are refused") {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K,
                     GgmlType::Q6_K, GgmlType::BF16}) {
    std::string upper = ggml_type_name(t), lower = upper;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    GgmlType a = GgmlType::F32, b = GgmlType::F32;
    CHECK(ggml_type_from_name(upper, &a));
    CHECK(ggml_type_from_name(lower, &b));
    CHECK(a == t);
    CHECK(b == t);
  }
  GgmlType out = GgmlType::BF16;
  for (const char* bad : {"", "q4_1", "q3_k", "q4_k_m", "f1", "bf16x", "F 16"}) {
    CAPTURE(bad);
    CHECK_FALSE(ggml_type_from_name(bad, &out));
  }
  CHECK(out == GgmlType::BF16);  // untouched on failure
}

TEST_CASE("gguf: stories260K metadata") {
  auto r = GgufFile::open(st::model_path("stories260K.gguf"));
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  const GgufFile& f = **r;
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_uint("llama.embedding_length") == 64u);
  CHECK(f.get_uint("llama.block_count") == 5u);
  CHECK(f.get_uint("llama.attention.head_count") == 8u);
  CHECK(f.get_uint("llama.attention.head_count_kv") == 4u);
  CHECK(f.get_uint("llama.feed_forward_length") == 172u);
  CHECK(f.get_uint("llama.context_length") == 2048u);
  CHECK(f.get_int("llama.rope.dimension_count") == 8);
  CHECK(f.get_float("llama.attention.layer_norm_rms_epsilon").value() == doctest::Approx(1e-5));
  CHECK(f.get_uint("tokenizer.ggml.bos_token_id") == 1u);
  CHECK(f.get_uint("tokenizer.ggml.eos_token_id") == 2u);
  CHECK(f.get_uint("tokenizer.ggml.seperator_token_id") == 0xffffffffu);
  CHECK(f.get_string("tokenizer.ggml.model") == "llama");
  CHECK_FALSE(f.get_uint("no.such.key").has_value());
  CHECK_FALSE(f.get_uint("general.architecture").has_value());  // a string is not an integer
  CHECK_FALSE(f.get_bool("llama.block_count").has_value());

  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  REQUIRE(tokens);
  CHECK(tokens->type == GgufValueType::ARRAY);
  CHECK(tokens->elem_type == GgufValueType::STRING);
  REQUIRE(tokens->strings.size() == 512);
  CHECK(tokens->strings[0] == "<unk>");
  CHECK(tokens->strings[1] == "<s>");
  CHECK(tokens->strings[2] == "</s>");
  CHECK(tokens->strings[3] == "<0x00>");
  const GgufValue* scores = f.find("tokenizer.ggml.scores");
  REQUIRE(scores);
  CHECK(scores->elem_type == GgufValueType::FLOAT32);
  CHECK(scores->count == 512);
  CHECK(GgufFile::array_float(*scores, 259) == 0.0);  // the first merge scores -(id-259)
  CHECK(GgufFile::array_float(*scores, 300) == -41.0);
  const GgufValue* types = f.find("tokenizer.ggml.token_type");
  REQUIRE(types);
  CHECK(types->elem_type == GgufValueType::INT32);
  CHECK(types->count == 512);
  CHECK(GgufFile::array_int(*types, 0) == 2);  // unknown
  CHECK(GgufFile::array_int(*types, 1) == 3);  // control
}

TEST_CASE("gguf: stories260K tensors lie in the file and match stories260K.bin") {
  auto r = GgufFile::open(st::model_path("stories260K.gguf"));
  REQUIRE(r.has_value());
  const GgufFile& f = **r;
  CHECK(f.tensors().size() == 48);
  const GgufTensorInfo* emb = f.tensor("token_embd.weight");
  REQUIRE(emb);
  CHECK(emb->n_dims == 2);
  CHECK(emb->ne[0] == 64);
  CHECK(emb->ne[1] == 512);
  CHECK(emb->type == GgmlType::F32);
  CHECK(emb->nbytes == 64 * 512 * 4);
  const GgufTensorInfo* gate = f.tensor("blk.0.ffn_gate.weight");
  REQUIRE(gate);
  CHECK(gate->ne[0] == 64);
  CHECK(gate->ne[1] == 172);
  const GgufTensorInfo* down = f.tensor("blk.4.ffn_down.weight");
  REQUIRE(down);
  CHECK(down->ne[0] == 172);
  CHECK(down->ne[1] == 64);
  const GgufTensorInfo* norm = f.tensor("output_norm.weight");
  REQUIRE(norm);
  CHECK(norm->n_dims == 1);
  CHECK(norm->n_elements() == 64);
  CHECK(f.tensor("blk.5.ffn_gate.weight") == nullptr);

  const auto bytes = f.bytes();
  for (const auto& t : f.tensors()) {
    CAPTURE(t.name);
    CHECK(t.data >= bytes.data());
    CHECK(t.data + t.nbytes <= bytes.data() + bytes.size());
    CHECK(static_cast<size_t>(t.data - bytes.data()) % f.alignment() == 0);
    CHECK(t.nbytes == static_cast<size_t>(t.n_elements()) * 4);
  }
  const std::vector<uint8_t> bin = st::read_file(st::model_path("stories260K.bin"));
  REQUIRE(bin.size() >= 28 + emb->nbytes);
  CHECK(std::memcmp(emb->data, bin.data() + 28, emb->nbytes) == 0);
  CHECK(std::memcmp(f.tensor("output.weight")->data, emb->data, emb->nbytes) == 0);  // shared classifier
}

TEST_CASE("gguf: open reports I/O errors and empty files") {
  const std::string dir = st::temp_dir();
  auto missing = GgufFile::open(dir + "/missing.gguf");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == SPECD_E_IO);
  auto directory = GgufFile::open(dir);
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().code == SPECD_E_IO);
  st::write_file(dir + "/empty.gguf", {});
  auto empty = GgufFile::open(dir + "/empty.gguf");
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().code == SPECD_E_BAD_MODEL);
  CHECK(empty.error().message.find("truncated in header") != std::string::npos);
  auto empty_mem = GgufFile::from_memory(nullptr, 0);
  REQUIRE_FALSE(empty_mem.has_value());
  CHECK(empty_mem.error().code == SPECD_E_BAD_MODEL);
}

namespace {

GgufValue scalar_value(GgufValueType t, int64_t i, uint64_t u, double f) {
  GgufValue v;
  v.type = t;
  v.i = i;
  v.u = u;
  v.f = f;
  return v;
}

GgufValue array_value(GgufValueType et, const void* p, uint64_t n) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.elem_type = et;
  v.count = n;
  v.elems = static_cast<const uint8_t*>(p);
  return v;
}

// A writer holding every metadata type and every tensor type. Arrays and tensor bytes live here
// because the writer borrows them; the object is never copied.
struct RoundTripInput {
  const uint8_t u8s[3] = {1, 2, 255};
  const int16_t i16s[2] = {-3, 4};
  const uint64_t u64s[1] = {uint64_t{1} << 63};
  const double f64s[2] = {3.25, -0.5};
  const uint8_t bools[3] = {1, 0, 1};
  std::vector<GgufKv> copied;
  std::vector<std::vector<uint8_t>> datas;
  GgufWriter w;

  RoundTripInput() {
    w.set_u32("a.u32", 0xdeadbeefu);
    w.set_i32("a.i32", -5);
    w.set_u64("a.u64", (uint64_t{1} << 40) + 3);
    w.set_f32("a.f32", 1.5f);
    w.set_bool("a.bool", true);
    w.set_string("a.string", "h\xc3\xa9llo");
    w.set_array_string("a.strings", {"a", "", "ccc"});
    w.set_array_f32("a.floats", {0.25f, -2.0f});
    w.set_array_i32("a.ints", {7, -8, 9});
    w.set_u32("a.i32", 3);  // re-set: new value and type, position of the first
    copied = {
        {"b.u8", scalar_value(GgufValueType::UINT8, 0, 200, 0)},
        {"b.i8", scalar_value(GgufValueType::INT8, -100, 0, 0)},
        {"b.u16", scalar_value(GgufValueType::UINT16, 0, 60000, 0)},
        {"b.i16", scalar_value(GgufValueType::INT16, -30000, 0, 0)},
        {"b.i64", scalar_value(GgufValueType::INT64, -(int64_t{1} << 40), 0, 0)},
        {"b.f64", scalar_value(GgufValueType::FLOAT64, 0, 0, 3.141592653589793)},
        {"b.bool", scalar_value(GgufValueType::BOOL, 0, 0, 0)},
        {"b.arr_u8", array_value(GgufValueType::UINT8, u8s, 3)},
        {"b.arr_i16", array_value(GgufValueType::INT16, i16s, 2)},
        {"b.arr_u64", array_value(GgufValueType::UINT64, u64s, 1)},
        {"b.arr_f64", array_value(GgufValueType::FLOAT64, f64s, 2)},
        {"b.arr_bool", array_value(GgufValueType::BOOL, bools, 3)},
        {"b.arr_empty", array_value(GgufValueType::UINT32, nullptr, 0)},
    };
    for (const auto& kv : copied) REQUIRE(w.copy_kv(kv).has_value());
    add("f32", GgmlType::F32, {8, 3}, 8 * 3 * 4);
    add("f16", GgmlType::F16, {17}, 17 * 2);
    add("q8", GgmlType::Q8_0, {64, 2}, 2 * 2 * 34);
    add("bf16", GgmlType::BF16, {4, 2, 3, 2}, 48 * 2);
  }
  RoundTripInput(const RoundTripInput&) = delete;

  // A tensor with distinct deterministic bytes.
  void add(const char* name, GgmlType type, std::vector<int64_t> ne, size_t nbytes) {
    datas.emplace_back(nbytes);
    for (size_t i = 0; i < nbytes; ++i) datas.back()[i] = static_cast<uint8_t>(i * 31 + datas.size());
    REQUIRE(w.add_tensor(name, type, std::move(ne), datas.back()).has_value());
  }
};

void check_set_values(const GgufFile& f) {
  const char* order[] = {"a.u32", "a.i32", "a.u64", "a.f32", "a.bool", "a.string", "a.strings", "a.floats", "a.ints"};
  for (size_t i = 0; i < std::size(order); ++i) CHECK(f.metadata()[i].key == order[i]);
  CHECK(f.get_uint("a.u32") == 0xdeadbeefu);
  CHECK(f.get_uint("a.i32") == 3u);
  CHECK(f.find("a.i32")->type == GgufValueType::UINT32);
  CHECK(f.get_uint("a.u64") == (uint64_t{1} << 40) + 3);
  CHECK(f.get_float("a.f32") == 1.5);
  CHECK(f.get_bool("a.bool") == true);
  CHECK(f.get_string("a.string") == "h\xc3\xa9llo");
  CHECK(f.find("a.strings")->strings == (std::vector<std::string_view>{"a", "", "ccc"}));
  CHECK(GgufFile::array_float(*f.find("a.floats"), 1) == -2.0);
  CHECK(GgufFile::array_int(*f.find("a.ints"), 1) == -8);
}

void check_copied_values(const GgufFile& f, const std::vector<GgufKv>& copied) {
  for (const auto& kv : copied) {
    CAPTURE(kv.key);
    const GgufValue* v = f.find(kv.key);
    REQUIRE(v);
    CHECK(v->type == kv.value.type);
    if (v->type == GgufValueType::ARRAY) CHECK(same_value(*v, kv.value));  // scalars: by getter below
  }
  CHECK(f.get_uint("b.u8") == 200u);
  CHECK(f.get_int("b.i8") == -100);
  CHECK_FALSE(f.get_uint("b.i8").has_value());  // negative: does not fit
  CHECK(f.get_uint("b.u16") == 60000u);
  CHECK(f.get_int("b.i16") == -30000);
  CHECK(f.get_int("b.i64") == -(int64_t{1} << 40));
  CHECK(f.get_float("b.i64") == -1099511627776.0);
  CHECK(f.get_float("b.f64") == 3.141592653589793);
  CHECK(f.get_bool("b.bool") == false);
  CHECK_FALSE(f.get_float("b.bool").has_value());
  CHECK(GgufFile::array_float(*f.find("b.arr_u64"), 0) == 9223372036854775808.0);
  CHECK(GgufFile::array_float(*f.find("b.arr_f64"), 0) == 3.25);
  CHECK(GgufFile::array_int(*f.find("b.arr_f64"), 1) == 0);  // -0.5 truncates toward zero
  CHECK(GgufFile::array_int(*f.find("b.arr_bool"), 2) == 1);
}

}  // namespace

TEST_CASE("gguf: writer round trip of every metadata and tensor type") {
  RoundTripInput in;
  uint32_t alignment = 32;
  SUBCASE("default alignment") {}
  SUBCASE("alignment 64") {
    alignment = 64;
    in.w.set_alignment(64);
  }
  const std::string path = st::temp_dir() + "/rt.gguf";
  REQUIRE(in.w.write(path).has_value());
  auto r = GgufFile::open(path);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  const GgufFile& f = **r;
  CHECK(f.version() == 3);
  CHECK(f.alignment() == alignment);
  check_set_values(f);
  check_copied_values(f, in.copied);
  REQUIRE(f.tensors().size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    const GgufTensorInfo& t = f.tensors()[i];
    CAPTURE(t.name);
    REQUIRE(t.nbytes == in.datas[i].size());
    CHECK(std::memcmp(t.data, in.datas[i].data(), t.nbytes) == 0);
    CHECK(static_cast<size_t>(t.data - f.bytes().data()) % alignment == 0);
  }
  CHECK(f.tensor("q8")->type == GgmlType::Q8_0);
  CHECK(f.tensor("bf16")->n_dims == 4);
  CHECK(f.tensor("bf16")->ne[3] == 2);
  CHECK(f.tensor("f16")->ne[0] == 17);
}

TEST_CASE("gguf: writer copies stories260K exactly via copy_kv and add_tensor") {
  auto src = GgufFile::open(st::model_path("stories260K.gguf"));
  REQUIRE(src.has_value());
  GgufWriter w;
  for (const auto& kv : (*src)->metadata()) REQUIRE(w.copy_kv(kv).has_value());
  for (const auto& t : (*src)->tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    REQUIRE(w.add_tensor(std::string(t.name), t.type, ne, {t.data, t.nbytes}).has_value());
  }
  const std::string path = st::temp_dir() + "/copy.gguf";
  REQUIRE(w.write(path).has_value());
  auto copy = GgufFile::open(path);
  REQUIRE_MESSAGE(copy.has_value(), (copy ? "" : copy.error().message));
  expect_same_files(**src, **copy);
  // llama.cpp wrote the original with the same layout rules, so even the bytes agree.
  CHECK(st::read_file(path) == real_file());
}

TEST_CASE("gguf: copy_kv of general.alignment sets the alignment the writer uses") {
  GgufWriter w;
  GgufKv kv{"general.alignment", scalar_value(GgufValueType::UINT32, 0, 128, 0)};
  REQUIRE(w.copy_kv(kv).has_value());
  std::vector<uint8_t> data(3 * 4, 5);
  REQUIRE(w.add_tensor("a", GgmlType::F32, {3}, data).has_value());
  REQUIRE(w.add_tensor("b", GgmlType::F32, {3}, data).has_value());
  const std::string path = st::temp_dir() + "/a128.gguf";
  REQUIRE(w.write(path).has_value());
  auto r = GgufFile::open(path);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  CHECK((*r)->alignment() == 128);
  CHECK((*r)->tensor("b")->offset == 128);
  CHECK(static_cast<size_t>((*r)->tensor("a")->data - (*r)->bytes().data()) % 128 == 0);
}

TEST_CASE("gguf: writer rejects bad tensors and unwritable paths") {
  GgufWriter w;
  std::vector<uint8_t> data(64 * 4);
  CHECK(w.add_tensor("x", GgmlType::F32, {64}, data).has_value());
  CHECK(w.add_tensor("x", GgmlType::F32, {64}, data).error().code == SPECD_E_INVALID_ARG);  // duplicate
  CHECK(w.add_tensor("y", GgmlType::F32, {32}, data).error().code == SPECD_E_INVALID_ARG);  // size mismatch
  CHECK(w.add_tensor("y", GgmlType::F32, {}, data).error().code == SPECD_E_INVALID_ARG);
  CHECK(w.add_tensor("y", GgmlType::F32, {64, 1, 1, 1, 1}, data).error().code == SPECD_E_INVALID_ARG);
  CHECK(w.add_tensor("y", GgmlType::F32, {-64}, data).error().code == SPECD_E_INVALID_ARG);
  CHECK(w.add_tensor("y", GgmlType::Q8_0, {16}, data).error().code == SPECD_E_INVALID_ARG);
  CHECK(w.add_tensor("y", static_cast<GgmlType>(2), {64}, data).error().code == SPECD_E_INVALID_ARG);
  CHECK(w.add_tensor("y", GgmlType::F32, {int64_t{1} << 40, int64_t{1} << 40}, data).error().code ==
        SPECD_E_INVALID_ARG);
  GgufValue nested;
  nested.type = GgufValueType::ARRAY;
  nested.elem_type = GgufValueType::ARRAY;
  CHECK(w.copy_kv({"n", nested}).error().code == SPECD_E_INVALID_ARG);

  const std::string dir = st::temp_dir();
  auto io = w.write(dir + "/no/such/dir/x.gguf");
  REQUIRE_FALSE(io.has_value());
  CHECK(io.error().code == SPECD_E_IO);
  w.set_alignment(3);
  CHECK(w.write(dir + "/x.gguf").error().code == SPECD_E_INVALID_ARG);
}

TEST_CASE("gguf: malformed header") {
  auto b = real_file();
  SUBCASE("version 2 is accepted") {
    patch<uint32_t>(b, 4, 2);
    CHECK(parse_error(b).code == SPECD_OK);
  }
  SUBCASE("bad magic") {
    std::memcpy(b.data(), "root", 4);
    expect_error(b, SPECD_E_BAD_MODEL, "bad magic");
    const std::string msg = parse_error(b).message;  // never the file's bytes (a probe read /etc/shadow this way)
    CHECK_MESSAGE(msg.find("72") == std::string::npos, msg);
    CHECK_MESSAGE(msg.find("root") == std::string::npos, msg);
  }
  SUBCASE("version 1") {
    patch<uint32_t>(b, 4, 1);
    expect_error(b, SPECD_E_BAD_MODEL, "unsupported gguf version 1");
  }
  SUBCASE("version 4") {
    patch<uint32_t>(b, 4, 4);
    expect_error(b, SPECD_E_BAD_MODEL, "unsupported gguf version 4");
  }
  SUBCASE("absurd tensor count") {
    patch<uint64_t>(b, 8, uint64_t{1} << 62);
    expect_error(b, SPECD_E_BAD_MODEL, "absurd tensor count");
  }
  SUBCASE("absurd metadata count") {
    patch<uint64_t>(b, 16, uint64_t{1} << 40);
    expect_error(b, SPECD_E_BAD_MODEL, "absurd metadata count");
  }
  SUBCASE("header only, no tensors or metadata") {
    Bytes h;
    h.raw("GGUF", 4).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(0);
    CHECK(parse_error(h.b).code == SPECD_OK);
  }
}

TEST_CASE("gguf: malformed metadata") {
  auto b = real_file();
  const size_t tokens_type = find_bytes(b, "tokenizer.ggml.tokens") + 21;  // the first entry's type field
  SUBCASE("key length past the end") {
    patch<uint64_t>(b, 24, uint64_t{1} << 40);
    expect_error(b, SPECD_E_BAD_MODEL, "string length out of bounds");
  }
  SUBCASE("array string length past the end names the key") {
    patch<uint64_t>(b, tokens_type + 16, ~uint64_t{0});
    expect_error(b, SPECD_E_BAD_MODEL, "string length out of bounds: tokenizer.ggml.tokens");
  }
  SUBCASE("unknown value type") {
    patch<uint32_t>(b, tokens_type, 99);
    expect_error(b, SPECD_E_BAD_MODEL, "unknown metadata type 99: tokenizer.ggml.tokens");
  }
  SUBCASE("unknown array element type") {
    patch<uint32_t>(b, tokens_type + 4, 99);
    expect_error(b, SPECD_E_BAD_MODEL, "unknown metadata type 99");
  }
  SUBCASE("nested array") {
    patch<uint32_t>(b, tokens_type + 4, 9);
    expect_error(b, SPECD_E_BAD_MODEL, "nested array: tokenizer.ggml.tokens");
  }
  SUBCASE("absurd array count") {
    patch<uint64_t>(b, tokens_type + 8, uint64_t{1} << 60);
    expect_error(b, SPECD_E_BAD_MODEL, "array count out of bounds: tokenizer.ggml.tokens");
  }
  SUBCASE("absurd float array count") {
    patch<uint64_t>(b, find_bytes(b, "tokenizer.ggml.scores") + 21 + 8, uint64_t{1} << 60);
    expect_error(b, SPECD_E_BAD_MODEL, "array count out of bounds: tokenizer.ggml.scores");
  }
  SUBCASE("duplicate metadata key") {
    b[find_bytes(b, "tokenizer.ggml.eos_token_id") + 15] = 'b';
    expect_error(b, SPECD_E_BAD_MODEL, "duplicate metadata key: tokenizer.ggml.bos_token_id");
  }
}

TEST_CASE("gguf: malformed alignment and booleans in small files") {
  CHECK(parse_error(tiny_file(0, {})).code == SPECD_OK);
  CHECK(parse_error(tiny_file(1, Bytes().kv_u32("general.alignment", 64), 64)).code == SPECD_OK);
  expect_error(tiny_file(1, Bytes().kv_u32("general.alignment", 0)), SPECD_E_BAD_MODEL, "bad alignment");
  expect_error(tiny_file(1, Bytes().kv_u32("general.alignment", 3)), SPECD_E_BAD_MODEL, "bad alignment");
  expect_error(tiny_file(1, Bytes().kv_u32("general.alignment", 1u << 31)), SPECD_E_BAD_MODEL, "bad alignment");
  expect_error(tiny_file(1, Bytes().str("general.alignment").put<uint32_t>(8).str("32")), SPECD_E_BAD_MODEL,
               "bad alignment");
  expect_error(tiny_file(1, Bytes().str("flag").put<uint32_t>(7).put<uint8_t>(2)), SPECD_E_BAD_MODEL,
               "bad bool value 2: flag");
  expect_error(tiny_file(1, Bytes().str("flags").put<uint32_t>(9).put<uint32_t>(7).put<uint64_t>(3).put<uint8_t>(1)
                                .put<uint8_t>(0).put<uint8_t>(2)),
               SPECD_E_BAD_MODEL, "bad bool value 2: flags");
  expect_error(tiny_file(2, Bytes().kv_u32("k", 1).kv_u32("k", 2)), SPECD_E_BAD_MODEL, "duplicate metadata key: k");
  // A hostile name is escaped in the message rather than copied raw.
  expect_error(tiny_file(1, Bytes().str("bad\n\x01").put<uint32_t>(99)), SPECD_E_BAD_MODEL,
               "unknown metadata type 99: bad\\x0a\\x01");
}

TEST_CASE("gguf: malformed tensor infos") {
  const std::vector<uint8_t>& real = real_file();
  const size_t emb = find_bytes(real, "token_embd.weight") + 17;  // n_dims, ne[2], type, offset follow
  const size_t n_dims = emb, ne0 = emb + 4, ne1 = emb + 12, type = emb + 20, offset = emb + 24;
  auto b = real;
  SUBCASE("n_dims 0") { patch<uint32_t>(b, n_dims, 0); expect_error(b, SPECD_E_BAD_MODEL, "n_dims 0 out of range"); }
  SUBCASE("n_dims 5") { patch<uint32_t>(b, n_dims, 5); expect_error(b, SPECD_E_BAD_MODEL, "n_dims 5 out of range"); }
  SUBCASE("zero dimension") { patch<int64_t>(b, ne1, 0); expect_error(b, SPECD_E_BAD_MODEL, "bad dimension"); }
  SUBCASE("negative dimension") {
    patch<int64_t>(b, ne0, -64);
    expect_error(b, SPECD_E_BAD_MODEL, "bad dimension");
  }
  SUBCASE("element count overflow") {
    patch<int64_t>(b, ne0, int64_t{1} << 40);
    patch<int64_t>(b, ne1, int64_t{1} << 40);
    expect_error(b, SPECD_E_BAD_MODEL, "bad dimension");
  }
  SUBCASE("byte count overflow") {  // 2^62 F32 elements is 2^64 bytes
    patch<int64_t>(b, ne0, int64_t{1} << 62);
    patch<int64_t>(b, ne1, 1);
    expect_error(b, SPECD_E_BAD_MODEL, "tensor data out of bounds: token_embd.weight");
  }
  SUBCASE("unknown tensor type") {
    patch<uint32_t>(b, type, 99);
    expect_error(b, SPECD_E_UNSUPPORTED, "unsupported tensor type 99: token_embd.weight");
  }
  SUBCASE("quantized type specd does not implement") {
    patch<uint32_t>(b, type, 3);  // Q4_1
    expect_error(b, SPECD_E_UNSUPPORTED, "unsupported tensor type 3");
  }
  SUBCASE("row not a multiple of the block") {
    patch<uint32_t>(b, find_bytes(b, "blk.0.ffn_down.weight") + 21 + 20, 8);  // ne0 = 172 as Q8_0
    expect_error(b, SPECD_E_BAD_MODEL, "row size not a multiple of block size: blk.0.ffn_down.weight");
  }
  SUBCASE("misaligned offset") {
    patch<uint64_t>(b, offset, 4);
    expect_error(b, SPECD_E_BAD_MODEL, "tensor offset not aligned: token_embd.weight");
  }
  SUBCASE("offset past the end") {
    patch<uint64_t>(b, offset, uint64_t{1} << 40);
    expect_error(b, SPECD_E_BAD_MODEL, "tensor data out of bounds: token_embd.weight");
  }
  SUBCASE("offset + size wraps around") {
    patch<uint64_t>(b, offset, ~uint64_t{31});
    expect_error(b, SPECD_E_BAD_MODEL, "tensor data out of bounds: token_embd.weight");
  }
  SUBCASE("last tensor one alignment step too far") {
    const size_t last = find_bytes(b, "blk.4.ffn_norm.weight") + 21 + 4 + 8 + 4;
    uint64_t off = 0;
    std::memcpy(&off, b.data() + last, 8);
    patch<uint64_t>(b, last, off + 32);
    expect_error(b, SPECD_E_BAD_MODEL, "tensor data out of bounds: blk.4.ffn_norm.weight");
  }
  SUBCASE("duplicate tensor name") {
    b[find_bytes(b, "blk.1.attn_q.weight") + 4] = '0';
    expect_error(b, SPECD_E_BAD_MODEL, "duplicate tensor name: blk.0.attn_q.weight");
  }
  SUBCASE("tensor name past the end") {
    patch<uint64_t>(b, emb - 17 - 8, uint64_t{1} << 50);
    expect_error(b, SPECD_E_BAD_MODEL, "string length out of bounds");
  }
}

TEST_CASE("gguf: every truncation of the real file fails cleanly") {
  const std::vector<uint8_t>& real = real_file();
  auto full = GgufFile::from_memory(real.data(), real.size());
  REQUIRE(full.has_value());
  const size_t data_start = static_cast<size_t>((*full)->tensors()[0].data - real.data());
  const char* phrases[] = {"truncated in", "absurd", "string length out of bounds", "array count out of bounds",
                           "tensor data out of bounds"};
  int bad = 0;
  auto check_prefix = [&](size_t n) {
    const specd::Error e = parse_error(real, n);
    bool named = false;
    for (const char* p : phrases) named = named || e.message.find(p) != std::string::npos;
    if (n < 24) named = e.message.find("truncated in header") != std::string::npos;
    if (n > data_start) named = e.message.find("tensor data out of bounds") != std::string::npos;
    if (e.code != SPECD_E_BAD_MODEL || !named) {
      if (++bad < 5) FAIL_CHECK("prefix " << n << ": code " << e.code << " " << e.message);
    }
  };
  for (size_t n = 0; n <= data_start; ++n) check_prefix(n);
  for (size_t n = data_start + 1; n < real.size(); n += 997) check_prefix(n);
  check_prefix(real.size() - 1);
  CHECK(bad == 0);
}

TEST_CASE("gguf: random mutations of the real file never crash") {
  std::vector<uint8_t> b = real_file();
  const size_t region = std::min<size_t>(b.size(), 40 * 1024);
  std::mt19937_64 rng(0x5eedf00dULL);  // mt19937_64's output is fixed by the standard: same cases everywhere
  int ok = 0, failed = 0, wrong_code = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<std::pair<size_t, uint64_t>> saved;
    const int n_mut = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const size_t at = static_cast<size_t>(rng() % (region - 8));
      uint64_t old = 0;
      std::memcpy(&old, b.data() + at, 8);
      saved.emplace_back(at, old);
      const uint64_t r = rng();
      switch (r % 5) {
        case 0: b[at] = static_cast<uint8_t>(r >> 8); break;
        case 1: b[at] ^= static_cast<uint8_t>(1u << ((r >> 8) % 8)); break;
        case 2: b[at] = 0; break;
        case 3: b[at] = 0xff; break;
        default: {  // an interesting 64-bit value, which is how counts and offsets go wrong
          const uint64_t vals[] = {0, 1, 31, 32, uint64_t{1} << 31, uint64_t{1} << 62, ~uint64_t{0}, old + 32};
          const uint64_t v = vals[(r >> 8) % std::size(vals)];
          std::memcpy(b.data() + at, &v, 8);
        }
      }
    }
    auto f = GgufFile::from_memory(b.data(), b.size());
    if (f) {
      ++ok;
      (void)touch_all(**f);
    } else {
      ++failed;
      const int code = f.error().code;
      if (code != SPECD_E_BAD_MODEL && code != SPECD_E_UNSUPPORTED && ++wrong_code < 5)
        FAIL_CHECK("code " << code << ": " << f.error().message);
    }
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) std::memcpy(b.data() + it->first, &it->second, 8);
  }
  MESSAGE("mutations: " << ok << " parsed, " << failed << " rejected");
  CHECK(b == real_file());
  CHECK(failed > 0);
  CHECK(wrong_code == 0);
}
