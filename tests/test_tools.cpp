// Tests of the model tools: specd-convert against the published GGUF, specd-inflate against the
// small model it embeds (through the engine and through the independent numpy reference).
#include "engine/batch.h"
#include "engine/forward.h"
#include "engine/gguf_reader.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace specd;
using namespace specd::test;
using specd::GgmlType;
using engine::GgufFile;

namespace {

std::string tool(const std::string& name) { return build_root() + "/tools/" + name; }
std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Runs a command with stderr folded into the captured output.
int run(const std::string& cmd, std::string* out) { return run_command(cmd + " 2>&1", out); }

std::string convert_stories(const std::string& dir, const std::string& type) {
  const std::string out = dir + "/stories260K-" + type + ".gguf";
  std::string log;
  const int rc = run(tool("specd-convert") + " --model " + quoted(model_path("stories260K.bin")) +
                         " --tokenizer " + quoted(model_path("tok512.bin")) + " --out " + quoted(out) +
                         " --type " + type,
                     &log);
  REQUIRE_MESSAGE(rc == 0, log);
  return out;
}

std::unique_ptr<GgufFile> open_gguf(const std::string& path) {
  auto f = GgufFile::open(path);
  REQUIRE_MESSAGE(f.has_value(), path << ": " << (f ? "" : f.error().message));
  return std::move(f.value());
}

std::unique_ptr<engine::Model> load_model(const std::string& path) {
  auto m = engine::Model::load(path);
  REQUIRE_MESSAGE(m.has_value(), path << ": " << (m ? "" : m.error().message));
  return std::move(m.value());
}

// The golden prompt: BOS + the first 16 verified greedy ids.
std::vector<int32_t> golden_prompt() {
  REQUIRE(golden_ids().size() >= 16);
  std::vector<int32_t> ids = {1};
  ids.insert(ids.end(), golden_ids().begin(), golden_ids().begin() + 16);
  return ids;
}

// Logits of every position when ids run as one causal call: [ids.size()][vocab].
std::vector<std::vector<float>> causal_logits(const engine::Model& m, const std::vector<int32_t>& ids) {
  const auto& c = m.config();
  kernels::ThreadPool pool(2);
  engine::KvCacheOptions opts;
  opts.max_bytes = size_t{64} << 20;
  engine::KvCache kv(c.n_layers, c.kv_dim(), c.ctx_len, opts);
  engine::Forward fwd(m, kv, pool);
  engine::Batch batch(static_cast<int32_t>(ids.size()));
  auto seq = kv.create_seq();
  REQUIRE(seq.has_value());
  for (size_t i = 0; i < ids.size(); ++i)
    batch.add_causal(*seq, ids[i], static_cast<int32_t>(i), engine::ROW_WANT_LOGITS);
  auto st = fwd.run(batch);
  REQUIRE_MESSAGE(st.has_value(), (st ? "" : st.error().message));
  std::vector<std::vector<float>> out;
  for (int32_t i = 0; i < batch.size(); ++i) {
    auto l = fwd.logits(batch.row(i).out_index);
    out.emplace_back(l.begin(), l.end());
  }
  return out;
}

float max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (size_t j = 0; j < a[i].size(); ++j) m = std::max(m, std::fabs(a[i][j] - b[i][j]));
  }
  return m;
}

std::string inflate_small(const std::string& dir, const std::string& name, const std::string& extra = "",
                          const std::string& type = "f32") {
  const std::string out = dir + "/" + name;
  std::string log;
  const int rc = run(tool("specd-inflate") + " --model " + quoted(model_path("stories260K.gguf")) + " --out " +
                         quoted(out) + " --dim 256 --layers 6 --heads 32 --kv-heads 4 --ffn 512 --type " + type + " " +
                         extra,
                     &log);
  REQUIRE_MESSAGE(rc == 0, log);
  return out;
}

// The command line running tests/reference/llama_ref.py on model (built by appending: GCC 12 warns
// falsely, -Wrestrict, on "literal" + std::string temporaries here).
std::string reference_cmd(const std::string& model, const std::string& args) {
  std::string cmd = "/usr/bin/python3 ";
  cmd.append(quoted(source_root() + "/tests/reference/llama_ref.py")).append(" ").append(quoted(model));
  return cmd.append(" ").append(args);
}

// Fails with a clear message (instead of odd errors later) when Debian's python3-numpy is missing.
void require_numpy() {
  std::string log;
  const int rc = run("/usr/bin/python3 -c 'import numpy'", &log);
  REQUIRE_MESSAGE(rc == 0, "the numpy reference needs /usr/bin/python3 with python3-numpy "
                           "(apt-get install python3-numpy; the set-up script does this): "
                               << log);
}

// tests/reference/llama_ref.py's logits for ids: raw float32 [ids.size()][vocab].
std::vector<std::vector<float>> reference_logits(const std::string& model, const std::vector<int32_t>& ids,
                                                 int64_t vocab) {
  require_numpy();
  std::string list, log;
  for (int32_t id : ids) list.append(list.empty() ? "" : ",").append(std::to_string(id));
  const std::string out = temp_dir() + "/logits.f32";
  const int rc = run(reference_cmd(model, "--ids " + list + " --out " + quoted(out)), &log);
  REQUIRE_MESSAGE(rc == 0, log);
  const auto bytes = read_file(out);
  REQUIRE(bytes.size() == ids.size() * static_cast<size_t>(vocab) * sizeof(float));
  std::vector<std::vector<float>> rows(ids.size(), std::vector<float>(static_cast<size_t>(vocab)));
  for (size_t i = 0; i < ids.size(); ++i)
    std::memcpy(rows[i].data(), bytes.data() + i * rows[i].size() * sizeof(float), rows[i].size() * sizeof(float));
  return rows;
}

}  // namespace

TEST_CASE("tools: specd-convert gives the published stories260K.gguf's tensors and vocabulary exactly") {
  const auto got = open_gguf(convert_stories(temp_dir(), "f32"));
  const auto ref = open_gguf(model_path("stories260K.gguf"));
  REQUIRE(got->tensors().size() == ref->tensors().size());
  for (const auto& r : ref->tensors()) {
    CAPTURE(r.name);
    const auto* g = got->tensor(r.name);
    REQUIRE(g != nullptr);
    CHECK(g->type == GgmlType::F32);
    CHECK(g->n_dims == r.n_dims);
    CHECK(std::equal(g->ne, g->ne + 4, r.ne));
    REQUIRE(g->nbytes == r.nbytes);
    CHECK(std::memcmp(g->data, r.data, r.nbytes) == 0);
  }
  const char* arrays[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
  for (const char* key : arrays) {
    CAPTURE(key);
    const auto *g = got->find(key), *r = ref->find(key);
    REQUIRE((g && r));
    REQUIRE(g->count == r->count);
    CHECK(g->elem_type == r->elem_type);
    if (r->elem_type == engine::GgufValueType::STRING) CHECK(g->strings == r->strings);
    else CHECK(std::memcmp(g->elems, r->elems, r->count * 4) == 0);  // scores bit for bit (-0.0 included)
  }
  for (const char* key :
       {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.rope.dimension_count", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
    CAPTURE(key);
    CHECK(got->get_uint(key) == ref->get_uint(key));
  }
  CHECK(got->get_uint("llama.context_length") == 512u);  // the checkpoint's seq_len, not llama.cpp's 2048
  const char* eps = "llama.attention.layer_norm_rms_epsilon";
  CHECK(got->get_float(eps) == ref->get_float(eps));
  CHECK(got->get_string("tokenizer.ggml.model") == ref->get_string("tokenizer.ggml.model"));
}

TEST_CASE("tools: specd-convert --type converts matrices only and keeps Q8_0-incompatible rows as F16") {
  const std::string dir = temp_dir();
  const auto ref = open_gguf(model_path("stories260K.gguf"));
  for (const char* type : {"f16", "bf16", "q8_0"}) {
    CAPTURE(type);
    const std::string path = convert_stories(dir, type);
    const auto got = open_gguf(path);
    const std::string ty = type;
    const GgmlType want = ty == "f16" ? GgmlType::F16 : ty == "bf16" ? GgmlType::BF16 : GgmlType::Q8_0;
    for (const auto& t : got->tensors()) {
      CAPTURE(t.name);
      const bool ffn_down = std::string_view(t.name).find("ffn_down") != std::string_view::npos;
      // Norms stay F32; ffn_down rows (172) are not whole Q8_0 blocks, so the converter keeps them F16.
      const GgmlType expect =
          t.n_dims == 1 ? GgmlType::F32 : (want == GgmlType::Q8_0 && ffn_down) ? GgmlType::F16 : want;
      CHECK(t.type == expect);
    }
    // Element by element, the F16 tensors are the reference rounded by the kernels' converter.
    const auto* g = got->tensor("blk.2.attn_q.weight");
    const auto* r = ref->tensor("blk.2.attn_q.weight");
    if (g->type == GgmlType::F16) {
      const auto* h = reinterpret_cast<const uint16_t*>(g->data);
      const auto* f = reinterpret_cast<const float*>(r->data);
      for (int64_t i = 0; i < r->n_elements(); ++i) REQUIRE(h[i] == kernels::f32_to_f16(f[i]));
    }
    CHECK(engine::Model::load(path).has_value());
  }
}

TEST_CASE("tools: specd-convert reads an unshared classifier (negative vocab) from the end of the file") {
  const std::string dir = temp_dir();
  auto bin = read_file(model_path("stories260K.bin"));
  REQUIRE(bin.size() > 28);
  const int32_t neg_vocab = -512;
  std::memcpy(bin.data() + 20, &neg_vocab, 4);  // header field 6: vocab
  std::vector<float> wcls(512 * 64);
  for (size_t i = 0; i < wcls.size(); ++i) wcls[i] = static_cast<float>(i) * 1e-3f;
  const auto* p = reinterpret_cast<const uint8_t*>(wcls.data());
  bin.insert(bin.end(), p, p + wcls.size() * sizeof(float));
  write_file(dir + "/unshared.bin", bin);
  std::string log;
  REQUIRE_MESSAGE(run(tool("specd-convert") + " --model " + quoted(dir + "/unshared.bin") + " --tokenizer " +
                          quoted(model_path("tok512.bin")) + " --out " + quoted(dir + "/u.gguf"),
                      &log) == 0,
                  log);
  const auto got = open_gguf(dir + "/u.gguf");
  const auto ref = open_gguf(model_path("stories260K.gguf"));
  const auto* out = got->tensor("output.weight");
  REQUIRE(out != nullptr);
  REQUIRE(out->nbytes == wcls.size() * sizeof(float));
  CHECK(std::memcmp(out->data, wcls.data(), out->nbytes) == 0);
  const auto *e = got->tensor("token_embd.weight"), *re = ref->tensor("token_embd.weight");
  REQUIRE((e && e->nbytes == re->nbytes));
  CHECK(std::memcmp(e->data, re->data, re->nbytes) == 0);
}

TEST_CASE("tools: specd-convert names the problem and exits non-zero on bad input") {
  const std::string dir = temp_dir();
  const auto bin = read_file(model_path("stories260K.bin"));
  const auto tok = read_file(model_path("tok512.bin"));
  REQUIRE(bin.size() > 1000);
  struct Case {
    const char* what;
    std::vector<uint8_t> model, tokenizer;
    const char* message;
  };
  std::vector<uint8_t> garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  std::vector<uint8_t> extra = bin;
  extra.push_back(0);
  const Case cases[] = {
      {"truncated weights", {bin.begin(), bin.begin() + 1000}, tok, "truncated"},
      {"truncated header", {bin.begin(), bin.begin() + 10}, tok, "truncated header"},
      {"garbage", garbage, tok, "bad header"},
      {"trailing bytes", extra, tok, "inconsistent size"},
      {"truncated tokenizer", bin, {tok.begin(), tok.begin() + 3000}, "tokenizer truncated"},
      {"empty tokenizer", bin, {}, "truncated tokenizer header"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    write_file(dir + "/m.bin", c.model);
    write_file(dir + "/t.bin", c.tokenizer);
    std::string log;
    const int rc = run(tool("specd-convert") + " --model " + quoted(dir + "/m.bin") + " --tokenizer " +
                           quoted(dir + "/t.bin") + " --out " + quoted(dir + "/x.gguf"),
                       &log);
    CHECK(rc != 0);
    CHECK_MESSAGE(log.find(c.message) != std::string::npos, log);
    CHECK(read_file(dir + "/x.gguf").empty());  // nothing written
  }
  std::string log;
  CHECK(run(tool("specd-convert") + " --model x.bin", &log) != 0);
  CHECK(log.find("required") != std::string::npos);
  CHECK(run(tool("specd-convert") + " --model a --tokenizer b --out c --type q4", &log) != 0);
  CHECK(log.find("unknown --type") != std::string::npos);
}

TEST_CASE("tools: every model tool answers --help, and a bad command line with exit 2 and its usage") {
  struct Case {
    const char* tool;
    const char* args;
    const char* message;
  };
  const Case cases[] = {
      {"specd-convert", "--model a --tokenizer b --out c --ctx -1", "--ctx must be an integer"},
      {"specd-convert", "--model a --tokenizer b --out c --bogus 1", "unknown option --bogus"},
      {"specd-inflate", "--model a --out b --dim 0", "--dim must be an integer"},
      {"specd-inflate", "--model a --out b --type q3_k", "unknown --type q3_k (f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m|q5_k_m)"},
      {"specd-inflate", "--model a --out b --drafter d", "--drafter and --drafter-out go together"},
      {"specd-inflate", "--model a --out", "option --out needs a value"},
      {"specd-add-mask", "--model a --out b --kind tree", "unknown --kind tree"},
      {"specd-add-mask", "--model a --out b --logit-shift 2", "--logit-shift must be an integer in [0, 1]"},
      {"specd-add-mask", "--out b", "--model and --out are required"},
      {"specd-random-model", "--arch gemma --vocab v --out o", "--arch must be llama, qwen2 or qwen3"},
      {"specd-random-model", "--arch qwen2 --out o", "--vocab and --out are required"},
      {"specd-random-model", "--arch qwen2 --vocab v --out o --shape huge", "--shape must be small or real"},
      {"specd-random-model", "--arch qwen2 --vocab v --out o --type q4_k", "unknown --type q4_k (f32|f16|bf16)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.tool);
    CAPTURE(c.args);
    std::string log;
    CHECK(run(tool(c.tool) + " " + c.args, &log) == 2);
    CHECK_MESSAGE(log.find(c.message) != std::string::npos, log);
    CHECK_MESSAGE(log.find("usage: " + std::string(c.tool)) != std::string::npos, log);
  }
  for (const char* t : {"specd-convert", "specd-inflate", "specd-add-mask", "specd-random-model"}) {
    std::string out;
    CHECK(run_command(tool(t) + " --help 2>/dev/null", &out) == 0);
    CHECK_MESSAGE(out.rfind("usage: " + std::string(t), 0) == 0, out);
  }
}

TEST_CASE("tools: an inflated F32 model computes stories260K's logits on the golden prompt") {
  const std::string path = inflate_small(temp_dir(), "inflated.gguf");
  const auto small = load_model(model_path("stories260K.gguf"));
  const auto big = load_model(path);
  const auto& c = big->config();
  CHECK(c.dim == 256);
  CHECK(c.n_layers == 6);
  CHECK(c.n_heads == 32);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.ffn_dim == 512);
  CHECK(c.head_dim == 8);
  CHECK_FALSE(c.tied_output);
  CHECK(std::fabs(c.rms_eps - 1e-5f * 64.0f / 256.0f) < 1e-12f);
  CHECK(big->tokenizer().vocab_size() == small->tokenizer().vocab_size());
  const auto ids = golden_prompt();
  const auto a = causal_logits(*small, ids);
  const auto b = causal_logits(*big, ids);
  CHECK(max_abs_diff(a, b) < 1e-4f);
  for (size_t i = 0; i + 1 < ids.size(); ++i) {  // and so the greedy choice at every position
    const auto& row = b[i];
    CHECK(std::max_element(row.begin(), row.end()) - row.begin() == ids[i + 1]);
  }
}

TEST_CASE("tools: specd-inflate --type writes quantized models (llama.cpp's Q4_K_M/Q5_K_M mix) that track the F32 one") {
  const std::string dir = temp_dir();
  const auto ids = golden_prompt();
  const auto f32 = load_model(inflate_small(dir, "f32.gguf"));
  const auto ref = causal_logits(*f32, ids);
  struct Case { const char* type; GgmlType matrix, v0, down1, output; float max_diff; };
  // ffn 512 rows are two K blocks; layers 6: use_more_bits picks layers 2 and 5 (and none of the first
  // eighth, 6/8 = 0). Bounds: the measured max |logit difference| on the golden prompt (0.11, 2.4,
  // 0.59, 1.45, 1.06) with ~1.5x headroom; the order of the types by error is checked below.
  const Case cases[] = {
      {"q8_0", GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0, 0.17f},
      {"q6_k", GgmlType::Q6_K, GgmlType::Q6_K, GgmlType::Q6_K, GgmlType::Q6_K, 0.9f},
      {"q5_k_m", GgmlType::Q5_K, GgmlType::Q5_K, GgmlType::Q5_K, GgmlType::Q6_K, 1.6f},
      {"q4_k_m", GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K, 2.2f},
      {"q4_0", GgmlType::Q4_0, GgmlType::Q4_0, GgmlType::Q4_0, GgmlType::Q6_K, 3.6f},
  };
  std::vector<float> diffs;
  for (const Case& c : cases) {
    INFO(c.type);
    const std::string path = inflate_small(dir, std::string(c.type) + ".gguf", "", c.type);
    auto f = engine::GgufFile::open(path);
    REQUIRE(f);
    CHECK((*f)->tensor("blk.0.attn_q.weight")->type == c.matrix);
    CHECK((*f)->tensor("blk.0.attn_v.weight")->type == c.v0);
    CHECK((*f)->tensor("blk.1.ffn_down.weight")->type == c.down1);
    CHECK((*f)->tensor("output.weight")->type == c.output);
    CHECK((*f)->tensor("blk.0.attn_norm.weight")->type == GgmlType::F32);
    if (std::string(c.type).size() == 6) {  // the mixes: Q6_K on the use_more_bits layers
      CHECK((*f)->tensor("blk.2.attn_v.weight")->type == GgmlType::Q6_K);
      CHECK((*f)->tensor("blk.5.ffn_down.weight")->type == GgmlType::Q6_K);
      CHECK((*f)->tensor("blk.3.ffn_down.weight")->type == c.matrix);
    }
    const auto m = load_model(path);
    const auto got = causal_logits(*m, ids);
    const float d = max_abs_diff(ref, got);
    MESSAGE(std::string(c.type) << ": max |logit - F32 logit| on the golden prompt " << d);
    CHECK(d < c.max_diff);
    diffs.push_back(d);
  }
  // More bits, less error: the cases are listed from the most precise to the least.
  for (size_t i = 1; i < diffs.size(); ++i) CHECK(diffs[i - 1] < diffs[i]);
}

namespace {

// FNV-1a 64 over a GGUF's tensors in name order: each one's name, type (4 bytes, little-endian) and
// data bytes (bench/kquant_llamacpp_expected.sh hashes llama-quantize's files the same way).
std::string tensor_hash(const GgufFile& f) {
  std::vector<const engine::GgufTensorInfo*> ts;
  for (const auto& t : f.tensors()) ts.push_back(&t);
  std::sort(ts.begin(), ts.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  uint64_t h = 0xCBF29CE484222325ull;
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  };
  for (const auto* t : ts) {
    mix(reinterpret_cast<const uint8_t*>(t->name.data()), t->name.size());
    const uint32_t type = static_cast<uint32_t>(t->type);
    const uint8_t le[4] = {static_cast<uint8_t>(type), static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type >> 16),
                           static_cast<uint8_t>(type >> 24)};
    mix(le, 4);
    mix(t->data, t->nbytes);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

TEST_CASE("tools: specd-quantize writes llama-quantize's bytes, and greedy choices follow llama.cpp's on them") {
  // tests/data/kquant/llamacpp.json: llama.cpp's tensors (hashed) and greedy texts for this model
  // (bench/kquant_llamacpp_expected.sh). Teacher-forced along each llama.cpp text, specd's top-1 must
  // be llama.cpp's token wherever specd's own margin to it is at least kTie: the two engines round
  // differently (llama.cpp keeps K/V in f16 and rounds Q to f16 in attention) and quantized
  // activations amplify that near ties. Measured: at most 0.088 at the positions that differ.
  constexpr float kTie = 0.1f;
  std::ifstream in(source_root() + "/tests/data/kquant/llamacpp.json");
  REQUIRE(in);
  const auto expected = nlohmann::json::parse(in);
  const std::string dir = temp_dir();
  std::string log;
  const std::string bf16 = dir + "/bf16.gguf";
  REQUIRE_MESSAGE(run(tool("specd-inflate") + " --model " + quoted(model_path("stories260K.gguf")) + " --out " +
                          quoted(bf16) + " --dim 256 --layers 6 --heads 32 --kv-heads 8 --ffn 512 --type bf16",
                      &log) == 0,
                  log);
  for (const auto& [type, want] : expected["types"].items()) {
    INFO(type);
    std::string lower = type;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::string path = dir + "/" + lower + ".gguf";
    REQUIRE_MESSAGE(run(tool("specd-quantize") + " --model " + quoted(bf16) + " --out " + quoted(path) + " --type " + lower,
                        &log) == 0,
                    log);
    CHECK(tensor_hash(*open_gguf(path)) == want["tensor_hash"].get<std::string>());
    const auto m = load_model(path);
    int positions = 0, agree = 0;
    float worst_tie = 0.0f;
    for (size_t p = 0; p < expected["prompts"].size(); ++p) {
      std::string text = want["greedy"][p].get<std::string>();
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
      if (!text.empty() && text.front() == ' ') text.erase(0, 1);  // llama-completion echoes the prompt after a space
      const std::vector<int32_t> ids = m->tokenizer().encode(text, true);
      const size_t n_prompt = m->tokenizer().encode(expected["prompts"][p].get<std::string>(), true).size();
      const auto logits = causal_logits(*m, ids);
      for (size_t i = n_prompt - 1; i + 1 < ids.size(); ++i) {
        const auto& row = logits[i];
        const auto top = std::max_element(row.begin(), row.end()) - row.begin();
        ++positions;
        if (top == ids[i + 1]) {
          ++agree;
          continue;
        }
        const float gap = row[static_cast<size_t>(top)] - row[static_cast<size_t>(ids[i + 1])];
        worst_tie = std::max(worst_tie, gap);
        CHECK_MESSAGE(gap < kTie, "prompt " << p << " position " << i);
      }
    }
    MESSAGE(type << ": specd's top-1 is llama.cpp's greedy token at " << agree << " of " << positions
                 << " positions; where not, llama.cpp's token is within " << worst_tie << " of specd's top logit");
    CHECK(agree >= positions * 97 / 100);
  }
}

TEST_CASE("tools: specd-inflate is deterministic per seed and refuses shapes it cannot embed into") {
  const std::string dir = temp_dir();
  const auto one = read_file(inflate_small(dir, "a.gguf", "--seed 7"));
  const auto two = read_file(inflate_small(dir, "b.gguf", "--seed 7"));
  const auto other = read_file(inflate_small(dir, "c.gguf", "--seed 8"));
  CHECK(one == two);
  CHECK(one.size() == other.size());
  CHECK(one != other);
  const char* bad[] = {
      "--dim 256 --heads 30",             // heads x head_dim != dim
      "--dim 32 --heads 4",               // narrower than the small model
      "--dim 256 --heads 32 --kv-heads 2",  // fewer KV heads than the small model
      "--dim 256 --heads 32 --kv-heads 32", // groups of 1 cannot hold the small groups of 2
      "--dim 256 --heads 32 --kv-heads 4 --ffn 100",
      "--dim 256 --heads 32 --kv-heads 4 --layers 3",
      "--type q4",
  };
  for (const char* args : bad) {
    CAPTURE(args);
    std::string log;
    CHECK(run(tool("specd-inflate") + " --model " + quoted(model_path("stories260K.gguf")) + " --out " +
                  quoted(dir + "/bad.gguf") + " " + args,
              &log) != 0);
    CHECK_MESSAGE(log.find("specd-inflate:") != std::string::npos, log);
  }
  std::string log;
  CHECK(run(tool("specd-inflate") + " --model " + quoted(dir + "/missing.gguf") + " --out " +
                quoted(dir + "/x.gguf"),
            &log) != 0);
  CHECK(log.find("error") != std::string::npos);
}

TEST_CASE("tools: the numpy reference reproduces the golden ids and agrees with the engine") {
  require_numpy();
  std::string out;
  const int rc = run(reference_cmd(model_path("stories260K.gguf"), "--greedy 200"), &out);
  REQUIRE_MESSAGE(rc == 0, out);
  std::istringstream s(out);
  std::vector<int32_t> ids;
  for (int32_t x; s >> x;) ids.push_back(x);
  CHECK(ids == golden_ids());
  const auto small = load_model(model_path("stories260K.gguf"));
  const auto prompt = golden_prompt();
  const auto ref = reference_logits(model_path("stories260K.gguf"), prompt, 512);
  CHECK(max_abs_diff(causal_logits(*small, prompt), ref) < 1e-4f);
}

TEST_CASE("tools: the numpy reference agrees with the engine on the inflated F32 model") {
  const std::string path = inflate_small(temp_dir(), "inflated.gguf");
  const auto big = load_model(path);
  const auto prompt = golden_prompt();
  const auto ref = reference_logits(path, prompt, big->config().vocab);
  CHECK(max_abs_diff(causal_logits(*big, prompt), ref) < 1e-4f);
  // The reference on the small model closes the loop without the engine.
  CHECK(max_abs_diff(ref, reference_logits(model_path("stories260K.gguf"), prompt, 512)) < 1e-4f);
}

TEST_CASE("tools: the PyTorch port of the training tools reproduces the golden ids and the engine's digest") {
  std::string out;
  int rc = run("/usr/bin/python3 -c 'import torch' 2>&1", &out);
  REQUIRE_MESSAGE(rc == 0, "Debian's python3-torch is missing (scripts/setup.sh installs it): " << out);
  const std::string port = quoted(source_root() + "/tools/train/specd_torch.py");
  rc = run("/usr/bin/python3 " + port + " --check 2>&1", &out);
  CHECK_MESSAGE(rc == 0, out);
  CHECK_MESSAGE(out.find("PASS") != std::string::npos, out);
  // The digest drafters record: Python's and the engine's must agree, byte for byte of the rule.
  for (const std::string& m : {model_path("stories260K.gguf"), inflate_small(temp_dir(), "inflated.gguf")}) {
    std::string digest;
    rc = run("/usr/bin/python3 " + port + " --digest " + quoted(m), &digest);
    REQUIRE_MESSAGE(rc == 0, digest);
    CHECK(digest.substr(0, 16) == load_model(m)->digest());
  }
}

TEST_CASE("tools: specd-random-model writes the same file for the same seed and another for another seed") {
  const std::string vocab = shared_dir() + "/data/vocab/ggml-vocab-qwen2.gguf";
  if (!std::filesystem::exists(vocab)) {
    MESSAGE("skipped: no " << vocab);
    return;
  }
  const std::string dir = temp_dir();
  auto make = [&](const std::string& name, int seed, const char* type) {
    std::string log;
    REQUIRE_MESSAGE(run(tool("specd-random-model") + " --arch qwen3 --vocab " + quoted(vocab) + " --out " +
                            quoted(dir + "/" + name) + " --seed " + std::to_string(seed) + " --type " + type, &log) == 0, log);
    return read_file(dir + "/" + name);
  };
  const auto a = make("a.gguf", 3, "f32"), b = make("b.gguf", 3, "f32"), c = make("c.gguf", 4, "f32");
  CHECK(a == b);
  CHECK(a != c);
  const auto half = make("h.gguf", 3, "bf16");
  CHECK(half.size() < a.size());
  CHECK(load_model(dir + "/h.gguf")->config().arch == "qwen3");
}
