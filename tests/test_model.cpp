// Model::load refuses metadata and tensor types the forward cannot use as written, with a named
// error, instead of computing something else. Regressions of an outside probe: rope.dimension_count
// = 0 and a norm's type changed from F32 to F16 both loaded and silently changed the output.
#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "engine/model.h"
#include "engine/model_summary.h"
#include "kernels/cpu/matmul.h"
#include "tests/arch_models.h"
#include "tests/daemon_harness.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include <set>

using namespace specd;
using namespace specd::test;

namespace {

// stories260K.gguf rewritten through GgufWriter: edit_kv may override metadata after the copy, and
// a tensor named `f16_tensor` is stored as F16 (its values converted, so nothing else changes).
std::string rewrite(const std::string& name, const std::function<void(engine::GgufWriter&)>& edit_kv,
                    const std::string& f16_tensor = "") {
  auto src = engine::GgufFile::open(model_path("stories260K.gguf"));
  REQUIRE(src.has_value());
  engine::GgufWriter w;
  for (const auto& kv : (*src)->metadata()) REQUIRE(w.copy_kv(kv));
  edit_kv(w);
  std::vector<std::vector<uint8_t>> keep;
  for (const auto& t : (*src)->tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    if (t.name == f16_tensor) {
      REQUIRE(t.type == specd::GgmlType::F32);
      auto& half = keep.emplace_back(t.nbytes / 2);
      for (size_t i = 0; i < t.nbytes / 4; ++i) {
        float x;
        std::memcpy(&x, t.data + 4 * i, 4);
        const uint16_t h = kernels::f32_to_f16(x);
        std::memcpy(half.data() + 2 * i, &h, 2);
      }
      REQUIRE(w.add_tensor(std::string(t.name), specd::GgmlType::F16, ne, half));
    } else {
      REQUIRE(w.add_tensor(std::string(t.name), t.type, ne, {t.data, t.nbytes}));
    }
  }
  const std::string path = temp_dir() + "/" + name;
  REQUIRE(w.write(path));
  return path;
}

// src rewritten without the metadata keys and tensors named in drop, with edit_kv applied after the copy.
// A tensor named in zeroed keeps its shape and type with every byte 0.
std::string without(const std::string& src_path, const std::string& name, const std::set<std::string>& drop,
                    const std::function<void(engine::GgufWriter&)>& edit_kv = [](engine::GgufWriter&) {},
                    const std::set<std::string>& zeroed = {}) {
  auto src = engine::GgufFile::open(src_path);
  REQUIRE(src.has_value());
  engine::GgufWriter w;
  for (const auto& kv : (*src)->metadata())
    if (!drop.count(std::string(kv.key))) REQUIRE(w.copy_kv(kv));
  edit_kv(w);
  const std::vector<uint8_t> zeros(1 << 20);
  for (const auto& t : (*src)->tensors())
    if (!drop.count(std::string(t.name)))
      REQUIRE(w.add_tensor(std::string(t.name), t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                           zeroed.count(std::string(t.name)) ? std::span<const uint8_t>(zeros.data(), t.nbytes)
                                                             : std::span<const uint8_t>(t.data, t.nbytes)));
  const std::string path = temp_dir() + "/" + name;
  REQUIRE(w.write(path));
  return path;
}

// The error of loading path; it must be BAD_MODEL and contain phrase.
void expect_refused(const std::string& path, const char* phrase) {
  auto m = engine::Model::load(path);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == SPECD_E_BAD_MODEL);
  CHECK_MESSAGE(m.error().message.find(phrase) != std::string::npos, m.error().message);
}

// Offset of the type field of tensor `name` in a GGUF file's bytes (after its name, n_dims and ne).
size_t type_field(const std::vector<uint8_t>& b, const std::string& name) {
  std::vector<uint8_t> needle(8);
  const uint64_t len = name.size();
  std::memcpy(needle.data(), &len, 8);
  needle.insert(needle.end(), name.begin(), name.end());
  const auto it = std::search(b.begin(), b.end(), needle.begin(), needle.end());
  REQUIRE(it != b.end());
  const size_t at = static_cast<size_t>(it - b.begin()) + needle.size();
  uint32_t n_dims;
  std::memcpy(&n_dims, b.data() + at, 4);
  return at + 4 + 8 * n_dims;
}

}  // namespace

TEST_CASE("model: an unchanged rewrite loads; rope.dimension_count must be positive, even and fit the head") {
  auto ok = engine::Model::load(rewrite("same.gguf", [](engine::GgufWriter&) {}));
  REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
  const int32_t head_dim = (*ok)->config().head_dim;
  for (int32_t bad : {0, 3, head_dim + 2}) {
    CAPTURE(bad);
    expect_refused(rewrite("rope.gguf", [bad](engine::GgufWriter& w) { w.set_u32("llama.rope.dimension_count", bad); }),
                   "llama.rope.dimension_count");
  }
  expect_refused(rewrite("rope-str.gguf", [](engine::GgufWriter& w) { w.set_string("llama.rope.dimension_count", "8"); }),
                 "llama.rope.dimension_count");
  expect_refused(rewrite("ctx.gguf", [](engine::GgufWriter& w) { w.set_i32("llama.context_length", -1); }),
                 "llama.context_length");
  auto half = engine::Model::load(
      rewrite("rope-half.gguf", [head_dim](engine::GgufWriter& w) { w.set_u32("llama.rope.dimension_count", head_dim / 2); }));
  CHECK(half.has_value());  // partial rotary embeddings are a real layout
}

TEST_CASE("model: norm weights must be F32; a converted F16 norm is refused, by name") {
  for (const char* t : {"output_norm.weight", "blk.0.attn_norm.weight", "blk.1.ffn_norm.weight"}) {
    CAPTURE(t);
    expect_refused(rewrite("norm.gguf", [](engine::GgufWriter&) {}, t), "1-D weights must be F32");
    expect_refused(rewrite("norm.gguf", [](engine::GgufWriter&) {}, t), t);
  }
  auto f16_matrix = engine::Model::load(rewrite("wq.gguf", [](engine::GgufWriter&) {}, "blk.0.attn_q.weight"));
  CHECK(f16_matrix.has_value());  // matrices may be F16 (the kernels compute with it)
}

TEST_CASE("model: a tensor's type field changed from F32 to F16 in place is refused, not reinterpreted") {
  const std::vector<uint8_t> orig = read_file(model_path("stories260K.gguf"));
  const std::string dir = temp_dir();
  for (const char* t : {"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output_norm.weight", "blk.0.attn_norm.weight"}) {
    CAPTURE(t);
    std::vector<uint8_t> b = orig;
    const size_t at = type_field(b, t);
    uint32_t type;
    std::memcpy(&type, b.data() + at, 4);
    REQUIRE(type == static_cast<uint32_t>(specd::GgmlType::F32));
    type = static_cast<uint32_t>(specd::GgmlType::F16);
    std::memcpy(b.data() + at, &type, 4);
    write_file(dir + "/flipped.gguf", b);
    auto m = engine::Model::load(dir + "/flipped.gguf");
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().code == SPECD_E_BAD_MODEL);
    CHECK_MESSAGE(m.error().message.find(t) != std::string::npos, m.error().message);
  }
}

TEST_CASE("model: the shipped and trained models still load") {
  for (const char* f : {"stories260K.gguf", "stories260K-tidar.gguf", "stories260K-d2f.gguf"}) {
    const std::string p = f == std::string("stories260K.gguf") ? model_path(f) : trained_model(f);
    if (p.empty()) {
      MESSAGE("no " << f << " in the training cache; not checked");
      continue;
    }
    auto m = engine::Model::load(p);
    CHECK_MESSAGE(m.has_value(), p << ": " << (m ? "" : m.error().message));
  }
}

TEST_CASE("model: an unsupported architecture is named with the supported ones") {
  auto m = engine::Model::load(rewrite("gemma.gguf", [](engine::GgufWriter& w) { w.set_string("general.architecture", "gemma2"); }));
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == SPECD_E_UNSUPPORTED);
  CHECK_MESSAGE(m.error().message.find("'gemma2' (supported: llama, qwen2, qwen3)") != std::string::npos, m.error().message);
}

TEST_CASE("model: every missing hyper-parameter is named in one error") {
  const std::string path = without(model_path("stories260K.gguf"), "nokeys.gguf", {"llama.block_count", "llama.feed_forward_length"});
  expect_refused(path, "llama.block_count");
  expect_refused(path, "llama.feed_forward_length");
}

TEST_CASE("model: llama, qwen2 and qwen3 files load with their block options from metadata") {
  const engine::Model* llama = arch_model(kArchCases[0]);
  const engine::Model* qwen2 = arch_model(kArchCases[1]);
  const engine::Model* qwen3 = arch_model(kArchCases[2]);
  if (!llama || !qwen2 || !qwen3) return;
  CHECK(llama->config().rope == engine::RopeLayout::Adjacent);
  CHECK(llama->config().n_kv_heads * 2 == llama->config().n_heads);
  CHECK_FALSE(llama->config().tied_output);
  CHECK(llama->rope_freqs().size() == static_cast<size_t>(llama->config().rope_dims / 2));
  CHECK(llama->layer(0).bq.empty());
  CHECK(llama->layer(0).q_norm.empty());
  CHECK(qwen2->config().rope == engine::RopeLayout::Neox);
  CHECK(qwen2->config().tied_output);
  CHECK(qwen2->layer(1).bq.size() == static_cast<size_t>(qwen2->config().q_dim()));
  CHECK(qwen2->layer(1).bv.size() == static_cast<size_t>(qwen2->config().kv_dim()));
  CHECK(qwen2->rope_freqs().empty());
  CHECK(qwen3->config().rope == engine::RopeLayout::Neox);
  CHECK(qwen3->config().head_dim == 32);
  CHECK(qwen3->config().q_dim() != qwen3->config().dim);
  CHECK(qwen3->layer(1).k_norm.size() == 32u);
  CHECK(qwen3->layer(0).bk.empty());
}

TEST_CASE("model: an architecture's missing tensors are all named, with the architecture") {
  const engine::Model* qwen2 = arch_model(kArchCases[1]);
  const engine::Model* qwen3 = arch_model(kArchCases[2]);
  if (!qwen2 || !qwen3) return;
  const std::string q2 = without(qwen2->path(), "q2.gguf", {"blk.1.attn_q.bias", "blk.1.attn_v.bias"});
  expect_refused(q2, "missing tensor blk.1.attn_q.bias");
  expect_refused(q2, "missing tensor blk.1.attn_v.bias");
  expect_refused(q2, "(architecture qwen2)");
  expect_refused(without(qwen3->path(), "q3.gguf", {"blk.0.attn_k_norm.weight"}), "missing tensor blk.0.attn_k_norm.weight");
}

TEST_CASE("model: RoPE scaling: linear divides positions by its factor; other types are refused by name") {
  const engine::Model* llama = arch_model(kArchCases[0]);
  if (!llama) return;
  auto lin = engine::Model::load(without(llama->path(), "linear.gguf", {}, [](engine::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "linear");
    w.set_f32("llama.rope.scaling.factor", 4.0f);
  }));
  REQUIRE(lin.has_value());
  CHECK((*lin)->config().rope_freq_scale == 0.25f);
  CHECK((*lin)->config().rope_params().freq_scale == 0.25f);
  auto yarn = engine::Model::load(without(llama->path(), "yarn.gguf", {}, [](engine::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "yarn");
  }));
  REQUIRE_FALSE(yarn.has_value());
  CHECK(yarn.error().code == SPECD_E_UNSUPPORTED);
  CHECK_MESSAGE(yarn.error().message.find("llama.rope.scaling.type 'yarn'") != std::string::npos, yarn.error().message);
  expect_refused(without(llama->path(), "nofactor.gguf", {}, [](engine::GgufWriter& w) {
                   w.set_string("llama.rope.scaling.type", "linear");
                 }),
                 "llama.rope.scaling.factor");
  expect_refused(without(llama->path(), "zerorf.gguf", {}, [](engine::GgufWriter&) {}, {"rope_freqs.weight"}),
                 "rope_freqs.weight: every factor must be positive");
  auto vlen = engine::Model::load(without(llama->path(), "vlen.gguf", {}, [](engine::GgufWriter& w) {
    w.set_u32("llama.attention.value_length", 8);
  }));
  REQUIRE_FALSE(vlen.has_value());
  CHECK(vlen.error().code == SPECD_E_UNSUPPORTED);
  CHECK_MESSAGE(vlen.error().message.find("llama.attention.value_length") != std::string::npos, vlen.error().message);
  // rope_freqs of the wrong length would pair factors with the wrong frequencies: refused.
  expect_refused(without(llama->path(), "norf.gguf", {"llama.rope.dimension_count"}, [](engine::GgufWriter& w) {
                   w.set_u32("llama.rope.dimension_count", 8);
                 }),
                 "rope_freqs.weight");
}

TEST_CASE("model: prompts follow add_bos_token, and EOT/EOM ids stop generation beside EOS") {
  const engine::Model* llama = arch_model(kArchCases[0]);
  const engine::Model* qwen2 = arch_model(kArchCases[1]);
  if (!llama || !qwen2) return;
  const auto l = llama->encode_prompt("Hello");
  REQUIRE(l.size() >= 2);
  CHECK(l.front() == llama->tokenizer().bos());  // Llama 3: add_bos_token true
  const auto q = qwen2->encode_prompt("Hello");
  REQUIRE_FALSE(q.empty());
  CHECK(q.front() != qwen2->tokenizer().bos());  // Qwen: no BOS
  const auto stops = llama->stop_tokens();
  REQUIRE(llama->tokenizer().eot() >= 0);
  CHECK(stops.front() == llama->config().eos);
  CHECK(std::count(stops.begin(), stops.end(), llama->tokenizer().eot()) == 1);
  if (llama->tokenizer().eom() >= 0) CHECK(std::count(stops.begin(), stops.end(), llama->tokenizer().eom()) == 1);
  auto stories = engine::Model::load(model_path("stories260K.gguf"));
  REQUIRE(stories.has_value());
  CHECK((*stories)->stop_tokens() == std::vector<int32_t>{(*stories)->config().eos, (*stories)->config().bos});
}

TEST_CASE("model summary: stories260K's parameters from its config, one weight type, the file's size") {
  auto m = engine::Model::load(model_path("stories260K.gguf"));
  REQUIRE(m.has_value());
  const engine::ModelSummary s = engine::summarize_model((*m)->file());
  const engine::ModelConfig& c = (*m)->config();
  const auto dim = static_cast<uint64_t>(c.dim), ffn = static_cast<uint64_t>(c.ffn_dim);
  const uint64_t per_layer = dim * static_cast<uint64_t>(c.q_dim()) * 2 + dim * static_cast<uint64_t>(c.kv_dim()) * 2 +
                             3 * dim * ffn + 2 * dim;  // Q, O, K, V, the three FFN matrices, two norms
  const uint64_t embeddings = static_cast<uint64_t>(c.vocab) * dim;
  CHECK(s.parameters == embeddings * (c.tied_output ? 1 : 2) + per_layer * static_cast<uint64_t>(c.n_layers) + dim);
  CHECK(s.architecture == "llama");
  CHECK(s.file_bytes == read_file(model_path("stories260K.gguf")).size());
  REQUIRE(s.types.size() == 1);
  CHECK(s.types[0].type == "F32");
  CHECK(s.types[0].parameters == s.parameters);
  CHECK(s.types[0].bytes == 4 * s.parameters);
}

namespace {

// `specd generate --json` (in-process) or `specctl --json generate` (through the daemon): the object.
nlohmann::json generation_json(const std::string& command) {
  std::string out;
  const int rc = run_command(command + " 2>/dev/null", &out);
  INFO(command << "\n" << out);
  REQUIRE(rc == 0);
  return nlohmann::json::parse(out);
}

}  // namespace

// The end of a turn is EOT in the models people chat with (Llama 3's <|eot_id|>, Qwen's <|im_end|>);
// random models never emit it, so stories260K gets an EOT id: a token it really generates.
TEST_CASE("model: a generation ends at the model's EOT id, in-process and through the daemon, with ar and ngram") {
  const std::string stories = model_path("stories260K.gguf");
  const std::string prompt = " --prompt 'Once upon a time' --max-tokens 40 --json";
  const auto base = generation_json(build_root() + "/daemon/specd generate --model " + shell_quote(stories) + prompt);
  const auto ids = base["token_ids"].get<std::vector<int32_t>>();
  REQUIRE(ids.size() == 40);
  size_t at = 4;  // the first token from the 5th on that the text has not generated before
  while (at < ids.size() && std::find(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(at), ids[at]) !=
                                ids.begin() + static_cast<std::ptrdiff_t>(at))
    ++at;
  REQUIRE(at < ids.size());
  const std::vector<int32_t> until_eot(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  const std::string eot_model = without(stories, "eot.gguf", {"tokenizer.ggml.eot_token_id"},
                                        [&](engine::GgufWriter& w) { w.set_u32("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(ids[at])); });
  DaemonProcess d({"--model", "eot=" + eot_model});
  REQUIRE_MESSAGE(d.wait_ready(), d.log());
  for (const char* decoder : {"ar", "ngram"}) {
    CAPTURE(decoder);
    const std::string options = std::string(" --decoder ") + decoder + prompt;
    const auto local = generation_json(build_root() + "/daemon/specd generate --model " + shell_quote(eot_model) + options);
    CHECK(local["token_ids"].get<std::vector<int32_t>>() == until_eot);
    CHECK(local["finish_reason"] == "stop");
    const auto served = generation_json(build_root() + "/clients/specctl --socket " + shell_quote(d.socket()) +
                                        " --json generate --model eot" + options);
    CHECK(served["token_ids"].get<std::vector<int32_t>>() == until_eot);
    CHECK(served["finish_reason"] == "stop");
  }
}
