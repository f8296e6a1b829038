// The host's tensor ops, metadata and side files as decoders call them (daemon/host_tensor_ops.cpp,
// daemon/host_files.cpp): results against plain loops, and every error path.
#include "daemon/host_files.h"
#include "daemon/host_tensor_ops.h"
#include "daemon/sequence_state.h"
#include "engine/gguf_writer.h"
#include "tests/runtime_fixture.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <unistd.h>

using namespace specd;
using namespace specd::test;
namespace ops = specd::daemon::tensor_ops;
namespace files = specd::daemon::host_files;

namespace {

struct HostFixture {
  RuntimeFixture f{{}, {"ar"}};
  daemon::LoadedDecoder dec{"probe", "", nullptr};
  specd_host h;
  HostFixture() {
    h.rt = &f.rt;
    h.decoder = &dec;
    h.phase = daemon::Phase::Create;
  }
  specd_tensor tensor(const char* name) {
    specd_tensor t{};
    REQUIRE(ops::tensor(&h, name, &t) == SPECD_OK);
    return t;
  }
  specd_buf* buf(const std::vector<float>& v) {
    specd_buf* b = nullptr;
    REQUIRE(ops::buf_create(&h, v.size(), &b) == SPECD_OK);
    REQUIRE(ops::buf_write(&h, b, 0, v.data(), v.size()) == SPECD_OK);
    owned.push_back(b);
    return b;
  }
  std::vector<float> read(const specd_buf* b, size_t n) {
    std::vector<float> v(n);
    REQUIRE(ops::buf_read(&h, b, 0, v.data(), n) == SPECD_OK);
    return v;
  }
  std::vector<specd_buf*> owned;
  ~HostFixture() {
    for (auto* b : owned) ops::buf_destroy(&h, b);
  }
};

// A small side file: one F32 [3 x 4] matrix, a bias, and metadata of each kind.
std::string write_side_file(const std::string& dir, const std::string& name = "side.gguf") {
  static const std::vector<float> m = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, bias = {0.5f, -1, 2};
  engine::GgufWriter w;
  w.set_string("general.architecture", "side");
  w.set_i32("side.answer", 42);
  w.set_f32("side.scale", 0.25f);
  w.set_string("side.name", "drafter");
  REQUIRE(w.add_tensor("side.m", specd::GgmlType::F32, {4, 3}, {reinterpret_cast<const uint8_t*>(m.data()), 48}));
  REQUIRE(w.add_tensor("side.b", specd::GgmlType::F32, {3}, {reinterpret_cast<const uint8_t*>(bias.data()), 12}));
  const std::string p = dir + "/" + name;
  REQUIRE(w.write(p));
  return p;
}

}  // namespace

TEST_CASE("tensor ops: gemm with bias, embed, silu, add, log_softmax and topk compute what they say") {
  HostFixture x;
  const std::string side = write_side_file(side_dir(), "tensors.gguf");
  REQUIRE(files::file_attach(&x.h, side.c_str()) == SPECD_OK);
  specd_tensor m = x.tensor("side.m"), b = x.tensor("side.b");
  CHECK(m.ne[0] == 4);
  CHECK(m.ne[1] == 3);
  specd_buf* in = x.buf({1, 0, 0, 1, 0, 1, 1, 0});  // 2 rows of 4
  specd_buf* out = x.buf(std::vector<float>(6));
  REQUIRE(ops::gemm(&x.h, &m, &b, in, 2, out) == SPECD_OK);
  CHECK(x.read(out, 6) == std::vector<float>{5.5f, 12, 23, 5.5f, 12, 23});
  REQUIRE(ops::gemm(&x.h, &m, nullptr, in, 2, out) == SPECD_OK);
  CHECK(x.read(out, 6) == std::vector<float>{5, 13, 21, 5, 13, 21});

  specd_tensor embd = x.tensor("token_embd.weight");
  specd_buf* e = x.buf(std::vector<float>(2 * 64));
  const int32_t ids[2] = {403, 7};
  REQUIRE(ops::embed(&x.h, &embd, ids, 2, e) == SPECD_OK);
  const auto ev = x.read(e, 128);
  const auto* raw = reinterpret_cast<const float*>(stories_model().file().tensor("token_embd.weight")->data);
  for (int i = 0; i < 64; ++i) {
    CHECK(ev[static_cast<size_t>(i)] == raw[403 * 64 + i]);
    CHECK(ev[static_cast<size_t>(64 + i)] == raw[7 * 64 + i]);
  }

  specd_buf* v = x.buf({-2, 0, 1, 3});
  REQUIRE(ops::silu(&x.h, v, 4) == SPECD_OK);
  const auto sv = x.read(v, 4);
  for (int i = 0; i < 4; ++i) {
    const float z = std::vector<float>{-2, 0, 1, 3}[static_cast<size_t>(i)];
    CHECK(sv[static_cast<size_t>(i)] == doctest::Approx(z / (1 + std::exp(-z))));
  }
  specd_buf* a = x.buf({1, 2, 3, 4});
  REQUIRE(ops::add(&x.h, a, a, a, 4) == SPECD_OK);  // y may alias both inputs
  CHECK(x.read(a, 4) == std::vector<float>{2, 4, 6, 8});

  specd_buf* l = x.buf({1, 2, 3, 0, 0, 0});
  REQUIRE(ops::log_softmax(&x.h, l, 2, 3) == SPECD_OK);
  const auto lv = x.read(l, 6);
  for (int r = 0; r < 2; ++r) {
    double s = 0;
    for (int i = 0; i < 3; ++i) s += std::exp(lv[static_cast<size_t>(r * 3 + i)]);
    CHECK(s == doctest::Approx(1.0));
  }
  CHECK(lv[2] - lv[1] == doctest::Approx(1.0));

  specd_buf* t = x.buf({0.5f, 3, 3, -1, 2, 9, 9, 9});
  int32_t tid[4];
  float tval[4];
  REQUIRE(ops::topk(&x.h, t, 2, 4, 2, tid, tval) == SPECD_OK);
  CHECK(std::vector<int32_t>(tid, tid + 4) == std::vector<int32_t>{1, 2, 1, 2});  // ties: lowest index first
  CHECK(std::vector<float>(tval, tval + 4) == std::vector<float>{3, 3, 9, 9});
}

TEST_CASE("tensor ops reject bad arguments with SPECD_E_INVALID_ARG or SPECD_E_BAD_TOKEN") {
  HostFixture x;
  specd_tensor t{};
  CHECK(ops::tensor(&x.h, "no.such.tensor", &t) == SPECD_E_INVALID_ARG);
  CHECK(ops::tensor(&x.h, nullptr, &t) == SPECD_E_INVALID_ARG);
  specd_buf* b = x.buf(std::vector<float>(4));
  float f4[4] = {};
  CHECK(ops::buf_write(&x.h, b, 2, f4, 3) == SPECD_E_INVALID_ARG);  // past the end
  CHECK(ops::buf_read(&x.h, b, 5, f4, 0) == SPECD_E_INVALID_ARG);
  CHECK(ops::buf_write(&x.h, b, 0, nullptr, 1) == SPECD_E_INVALID_ARG);
  CHECK(ops::buf_create(&x.h, 4, nullptr) == SPECD_E_INVALID_ARG);
  specd_tensor embd = x.tensor("token_embd.weight");
  specd_tensor norm = x.tensor("output_norm.weight");
  CHECK(ops::gemm(&x.h, &embd, nullptr, b, 1, b) == SPECD_E_INVALID_ARG);      // x too small for K = 64
  specd_buf* x64 = x.buf(std::vector<float>(64)), *y = x.buf(std::vector<float>(512));
  CHECK(ops::gemm(&x.h, &embd, &embd, x64, 1, y) == SPECD_E_INVALID_ARG);    // bias not a vector of N
  CHECK(ops::gemm(&x.h, &embd, &norm, x64, 1, y) == SPECD_E_INVALID_ARG);    // bias of 64, N = 512
  CHECK(ops::gemm(&x.h, &embd, nullptr, x64, 1, y) == SPECD_OK);
  const int32_t bad[1] = {512};
  CHECK(ops::embed(&x.h, &embd, bad, 1, x64) == SPECD_E_BAD_TOKEN);
  CHECK(ops::embed(&x.h, &norm, bad, 1, x64) == SPECD_E_INVALID_ARG);        // not a matrix
  CHECK(ops::silu(&x.h, b, 5) == SPECD_E_INVALID_ARG);
  CHECK(ops::add(&x.h, b, b, b, 5) == SPECD_E_INVALID_ARG);
  CHECK(ops::log_softmax(&x.h, b, 2, 4) == SPECD_E_INVALID_ARG);
  int32_t ids[4];
  float vals[4];
  CHECK(ops::topk(&x.h, b, 1, 4, 5, ids, vals) == SPECD_E_INVALID_ARG);      // k > cols
  CHECK(ops::topk(&x.h, b, 1, 4, 2, nullptr, vals) == SPECD_E_INVALID_ARG);
}

TEST_CASE("metadata comes from the model file, then from attached side files") {
  HostFixture x;
  int64_t i = 0;
  double d = 0;
  const char* s = nullptr;
  REQUIRE(files::meta_int(&x.h, "llama.embedding_length", &i) == SPECD_OK);
  CHECK(i == 64);
  CHECK(files::meta_int(&x.h, "side.answer", &i) == SPECD_E_INVALID_ARG);  // not attached yet
  REQUIRE(files::file_attach(&x.h, write_side_file(side_dir(), "meta.gguf").c_str()) == SPECD_OK);
  REQUIRE(files::meta_int(&x.h, "side.answer", &i) == SPECD_OK);
  CHECK(i == 42);
  REQUIRE(files::meta_float(&x.h, "side.scale", &d) == SPECD_OK);
  CHECK(d == 0.25);
  REQUIRE(files::meta_float(&x.h, "side.answer", &d) == SPECD_OK);  // integers read as numbers
  CHECK(d == 42.0);
  REQUIRE(files::meta_string(&x.h, "side.name", &s) == SPECD_OK);
  const char* first = s;
  REQUIRE(files::meta_string(&x.h, "general.architecture", &s) == SPECD_OK);
  CHECK(std::string(s) == "llama");  // the model file wins
  CHECK(std::string(first) == "drafter");  // earlier strings stay valid
  CHECK(files::meta_string(&x.h, "side.answer", &s) == SPECD_E_INVALID_ARG);  // wrong kind
  CHECK(files::meta_int(&x.h, "side.name", &i) == SPECD_E_INVALID_ARG);
  CHECK(files::meta_int(&x.h, "absent.key", &i) == SPECD_E_INVALID_ARG);
  CHECK(files::meta_int(&x.h, nullptr, &i) == SPECD_E_INVALID_ARG);
}

TEST_CASE("side files: read once, reloaded when rewritten, errors named; attach and refuse only in create") {
  HostFixture x;
  const std::string dir = side_dir();
  const std::string p = write_side_file(dir, "reloaded.gguf");
  REQUIRE(files::file_attach(&x.h, p.c_str()) == SPECD_OK);
  REQUIRE(files::file_attach(&x.h, p.c_str()) == SPECD_OK);
  CHECK(x.f.rt.side_files().size() == 1);
  {  // rewritten with other contents: the next attach reads the new file, the old one is dropped
    engine::GgufWriter w;
    w.set_i32("side.answer", 7);
    w.set_string("side.padding", std::string(100, 'x'));
    REQUIRE(w.write(p));
  }
  specd_host h2;  // a second instance of the same decoder
  h2.rt = x.h.rt;
  h2.decoder = x.h.decoder;
  h2.phase = x.h.phase;
  REQUIRE(files::file_attach(&h2, p.c_str()) == SPECD_OK);
  CHECK(x.f.rt.side_files().size() == 1);
  int64_t v = 0;
  REQUIRE(files::meta_int(&h2, "side.answer", &v) == SPECD_OK);
  CHECK(v == 7);
  REQUIRE(files::meta_int(&x.h, "side.answer", &v) == SPECD_OK);  // the first instance keeps its copy
  CHECK(v == 42);

  CHECK(files::file_attach(&x.h, (dir + "/absent.gguf").c_str()) == SPECD_E_IO);
  CHECK_MESSAGE(x.h.error.find("absent.gguf") != std::string::npos, x.h.error);
  CHECK_MESSAGE(x.h.error.find("decoder 'probe'") != std::string::npos, x.h.error);
  write_file(dir + "/garbage.gguf", {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1});
  x.h.error.clear();
  CHECK(files::file_attach(&x.h, (dir + "/garbage.gguf").c_str()) == SPECD_E_BAD_MODEL);
  CHECK_MESSAGE(x.h.error.find("garbage.gguf") != std::string::npos, x.h.error);

  CHECK(files::refuse(&x.h, SPECD_E_BAD_MODEL, "wrong %s", "drafter") == SPECD_E_BAD_MODEL);
  CHECK(x.h.error == "decoder 'probe': wrong drafter");
  CHECK(files::refuse(&x.h, 3, "positive") == SPECD_E_PLUGIN);
  x.h.phase = daemon::Phase::Plan;
  x.h.error.clear();
  CHECK(files::refuse(&x.h, SPECD_E_IO, "late") == SPECD_E_IO);
  CHECK(x.h.error.empty());
  CHECK(files::file_attach(&x.h, p.c_str()) == SPECD_E_INVALID_ARG);
}

TEST_CASE("buffers a decoder forgets are freed with its host: the bytes leave the plugin account, with a warning") {
  RuntimeFixture f{{}, {"ar"}};
  daemon::LoadedDecoder dec{"forgetful", "", nullptr};
  const size_t before = f.rt.plugin_bytes_in_use();
  auto h = std::make_unique<specd_host>();
  h->rt = &f.rt;
  h->decoder = &dec;
  specd_buf* kept = nullptr;
  specd_buf* forgotten[2] = {};
  REQUIRE(ops::buf_create(h.get(), 1000, &kept) == SPECD_OK);
  REQUIRE(ops::buf_create(h.get(), 256, &forgotten[0]) == SPECD_OK);
  REQUIRE(ops::buf_create(h.get(), 64, &forgotten[1]) == SPECD_OK);
  CHECK(f.rt.plugin_bytes_in_use() - before >= (1000 + 256 + 64) * sizeof(float));
  ops::buf_destroy(nullptr, kept);  // a NULL h still takes it off its host's list (no second free below)
  const size_t left = f.rt.plugin_bytes_in_use() - before;
  CHECK(left >= (256 + 64) * sizeof(float));

  // The host goes away (after the decoder's destroy()); its warning goes to stderr, captured here.
  const std::string log = temp_dir() + "/forgotten.log";
  std::fflush(stderr);
  const int saved = ::dup(2);
  FILE* cap = std::fopen(log.c_str(), "w");
  REQUIRE(cap != nullptr);
  ::dup2(::fileno(cap), 2);
  h.reset();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(cap);
  CHECK(f.rt.plugin_bytes_in_use() == before);
  const auto bytes = read_file(log);
  const std::string text(bytes.begin(), bytes.end());
  std::string want = "decoder 'forgetful' left 2 buffer(s), ";
  want.append(std::to_string(left)).append(" bytes");
  CHECK_MESSAGE(text.find(want) != std::string::npos, text);
}
