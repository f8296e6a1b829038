// specd-random-model: writes a random-weight llama / qwen2 / qwen3 GGUF with a real vocabulary.
//
// The test models of issue 14: the shapes and options of Llama 3.x (GQA, rope_freqs, untied or tied
// head), Qwen2.5 (Q/K/V biases) and Qwen3 (per-head Q/K norms, head_dim ≠ dim/heads), at a small
// shape for CI or at the real ones for benchmarks. The file is a function of (arch, shape, type,
// seed, vocabulary): weights come from our own PRNG (splitmix64, uniform), not std distributions,
// whose output differs between standard libraries. Scales keep activations O(1) and give the logits
// a spread of several units, so top-1 comparisons against llama.cpp have real margins.
#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "kernels/cpu/matmul.h"
#include "kernels/result.h"
#include "tools/tool_main.h"

#include <cinttypes>
#include <cmath>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using specd::GgmlType;
using specd::make_error;
using specd::Result;
using specd::Status;
using specd::engine::GgufFile;
using specd::engine::GgufWriter;

constexpr const char* kUsage =
    "usage: specd-random-model --arch llama|qwen2|qwen3 --vocab VOCAB.gguf --out OUT.gguf\n"
    "                          [--shape small|real] [--type f32|f16|bf16] [--seed N] [--chat-template FILE]\n"
    "  --vocab  a GGUF with tokenizer.ggml.* metadata (a vocabulary-only file will do); its\n"
    "           tokenizer keys are copied and the embedding gets one row per token\n"
    "  --shape  small (default: 2 layers, dim 64, for tests) or real: Llama-3.2-1B, Qwen2.5-0.5B,\n"
    "           Qwen3-0.6B by --arch\n"
    "  --chat-template  a Jinja file written as tokenizer.chat_template (instead of the vocabulary's)\n";

struct Shape {
  int64_t dim, layers, heads, kv_heads, head_dim, ffn;
  double theta, eps;
  bool tied;
};

struct Args {
  std::string arch, vocab, out, shape = "small";
  std::string chat_template;  // the file's text, "" to keep the vocabulary's (if any)
  GgmlType type = GgmlType::F32;
  uint64_t seed = 1;
};

// The shapes: small ones exercise every option (GQA; llama untied, qwen tied; qwen3's head_dim 32
// with dim/heads 16), the real ones are the published configs.
Shape shape_of(const std::string& arch, bool real) {
  if (arch == "llama") return real ? Shape{2048, 16, 32, 8, 64, 8192, 500000.0, 1e-5, true}
                                   : Shape{64, 2, 4, 2, 16, 128, 500000.0, 1e-5, false};
  if (arch == "qwen2") return real ? Shape{896, 24, 14, 2, 64, 4864, 1000000.0, 1e-6, true}
                                   : Shape{64, 2, 4, 2, 16, 128, 1000000.0, 1e-6, true};
  return real ? Shape{1024, 28, 16, 8, 128, 3072, 1000000.0, 1e-6, true}
              : Shape{64, 2, 4, 2, 32, 128, 1000000.0, 1e-6, true};
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform on [-1, 1) from the top 24 bits: exact in float, the same on every platform.
  float unit() { return static_cast<float>(static_cast<int64_t>(next() >> 40) - (1 << 23)) / static_cast<float>(1 << 23); }
};

// Llama 3.1's frequency factors as its converter computes them (factor 32, low/high frequency factor
// 1 and 4, original context 8192), for rope_dims/2 frequencies of base theta.
std::vector<float> llama3_rope_freqs(int64_t rope_dims, double theta) {
  const double factor = 32.0, low = 1.0, high = 4.0, old_ctx = 8192.0;
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> out;
  for (int64_t i = 0; i < rope_dims; i += 2) {
    const double freq = 1.0 / std::pow(theta, static_cast<double>(i) / static_cast<double>(rope_dims));
    const double wavelen = 2.0 * M_PI / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
    }
  }
  return out;
}

class Builder {
 public:
  Builder(GgufWriter& w, GgmlType type, uint64_t seed) : w_(w), type_(type), rng_{seed} {}

  // A [rows][cols] matrix of uniform values with standard deviation sd, stored as type_.
  Status matrix(const std::string& name, int64_t rows, int64_t cols, double sd) {
    std::vector<float> v(static_cast<size_t>(rows * cols));
    const float a = static_cast<float>(sd * std::sqrt(3.0));
    for (float& x : v) x = a * rng_.unit();
    auto& buf = bufs_.emplace_back();
    if (type_ == GgmlType::F32) {
      buf.resize(v.size() * 4);
      std::memcpy(buf.data(), v.data(), buf.size());
    } else {
      buf.resize(v.size() * 2);
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = type_ == GgmlType::F16 ? specd::kernels::f32_to_f16(v[i]) : specd::kernels::f32_to_bf16(v[i]);
        std::memcpy(buf.data() + 2 * i, &h, 2);
      }
    }
    return w_.add_tensor(name, type_, {cols, rows}, {buf.data(), buf.size()});
  }

  // A 1-D F32 vector: center + spread · uniform (norm gains near 1, biases near 0), or given values.
  Status vector(const std::string& name, int64_t n, float center, float spread) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = center + spread * rng_.unit();
    return values(name, v);
  }
  Status values(const std::string& name, const std::vector<float>& v) {
    auto& buf = bufs_.emplace_back(v.size() * 4);
    std::memcpy(buf.data(), v.data(), buf.size());
    return w_.add_tensor(name, GgmlType::F32, {static_cast<int64_t>(v.size())}, {buf.data(), buf.size()});
  }

 private:
  GgufWriter& w_;
  GgmlType type_;
  Rng rng_;
  std::vector<std::vector<uint8_t>> bufs_;  // borrowed by the writer until write()
};

Result<Args> args_from(const specd::cli::CliArgs& c) {
  Args a;
  a.arch = c.str("arch");
  a.vocab = c.str("vocab");
  a.out = c.str("out");
  a.shape = c.str("shape", "small");
  if (c.has("chat-template")) {
    std::ifstream f(c.str("chat-template"), std::ios::binary);
    std::ostringstream text;
    text << f.rdbuf();
    if (!f || text.str().empty()) return make_error(SPECD_E_IO, "cannot read the chat template %s", c.str("chat-template").c_str());
    a.chat_template = text.str();
  }
  if (a.arch != "llama" && a.arch != "qwen2" && a.arch != "qwen3")
    return make_error(SPECD_E_INVALID_ARG, "--arch must be llama, qwen2 or qwen3");
  if (a.vocab.empty() || a.out.empty()) return make_error(SPECD_E_INVALID_ARG, "--vocab and --out are required");
  if (a.shape != "small" && a.shape != "real") return make_error(SPECD_E_INVALID_ARG, "--shape must be small or real");
  auto type = specd::tools::type_option(c, "type", GgmlType::F32, {GgmlType::F32, GgmlType::F16, GgmlType::BF16});
  if (!type) return type.error();
  a.type = *type;
  auto seed = c.integer("seed", 1, 0, INT64_MAX);
  if (!seed) return seed.error();
  a.seed = static_cast<uint64_t>(*seed);
  return a;
}

Status run(const Args& a) {
  auto vf = GgufFile::open(a.vocab);
  if (!vf) return vf.error();
  const GgufFile& v = **vf;
  const auto* tokens = v.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->count == 0) return make_error(SPECD_E_BAD_MODEL, "%s has no tokenizer.ggml.tokens", a.vocab.c_str());
  const auto vocab = static_cast<int64_t>(tokens->count);
  const Shape s = shape_of(a.arch, a.shape == "real");
  const std::string p = a.arch + ".";

  GgufWriter w;
  w.set_string("general.architecture", a.arch);
  w.set_string("general.name", "specd random " + a.arch + " " + a.shape);
  w.set_u32(p + "context_length", a.shape == "real" ? 131072 : 4096);
  w.set_u32(p + "embedding_length", static_cast<uint32_t>(s.dim));
  w.set_u32(p + "block_count", static_cast<uint32_t>(s.layers));
  w.set_u32(p + "feed_forward_length", static_cast<uint32_t>(s.ffn));
  w.set_u32(p + "attention.head_count", static_cast<uint32_t>(s.heads));
  w.set_u32(p + "attention.head_count_kv", static_cast<uint32_t>(s.kv_heads));
  w.set_u32(p + "attention.key_length", static_cast<uint32_t>(s.head_dim));
  w.set_u32(p + "attention.value_length", static_cast<uint32_t>(s.head_dim));
  w.set_u32(p + "rope.dimension_count", static_cast<uint32_t>(s.head_dim));
  w.set_f32(p + "rope.freq_base", static_cast<float>(s.theta));
  w.set_f32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(s.eps));
  w.set_u32(p + "vocab_size", static_cast<uint32_t>(vocab));
  w.set_u32("general.file_type", a.type == GgmlType::F32 ? 0 : a.type == GgmlType::F16 ? 1 : 32);
  for (const auto& kv : v.metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0 && (a.chat_template.empty() || kv.key != "tokenizer.chat_template")) SPECD_TRY(w.copy_kv(kv));
  if (!a.chat_template.empty()) w.set_string("tokenizer.chat_template", a.chat_template);

  Builder b(w, a.type, a.seed);
  const int64_t q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  const double in_dim = 1.0 / std::sqrt(static_cast<double>(s.dim));
  // The head gives logits a spread ≈ 4 (sd · √dim against unit-RMS normed rows), so top-2 margins are
  // real without one token taking all the mass. A tied embedding is that head too: at sd 1 the input
  // token's own row would dominate every output (logit spread √dim).
  SPECD_TRY(b.matrix("token_embd.weight", vocab, s.dim, s.tied ? 4.0 * in_dim : 1.0));
  if (!s.tied) SPECD_TRY(b.matrix("output.weight", vocab, s.dim, 4.0 * in_dim));
  SPECD_TRY(b.vector("output_norm.weight", s.dim, 1.0f, 0.2f));
  if (a.arch == "llama") SPECD_TRY(b.values("rope_freqs.weight", llama3_rope_freqs(s.head_dim, s.theta)));
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string n = "blk." + std::to_string(l) + ".";
    SPECD_TRY(b.vector(n + "attn_norm.weight", s.dim, 1.0f, 0.2f));
    SPECD_TRY(b.matrix(n + "attn_q.weight", q, s.dim, in_dim));
    SPECD_TRY(b.matrix(n + "attn_k.weight", kv, s.dim, in_dim));
    SPECD_TRY(b.matrix(n + "attn_v.weight", kv, s.dim, in_dim));
    SPECD_TRY(b.matrix(n + "attn_output.weight", s.dim, q, 1.0 / std::sqrt(static_cast<double>(q))));
    if (a.arch == "qwen2") {
      SPECD_TRY(b.vector(n + "attn_q.bias", q, 0.0f, 0.5f));
      SPECD_TRY(b.vector(n + "attn_k.bias", kv, 0.0f, 0.5f));
      SPECD_TRY(b.vector(n + "attn_v.bias", kv, 0.0f, 0.5f));
    }
    if (a.arch == "qwen3") {
      SPECD_TRY(b.vector(n + "attn_q_norm.weight", s.head_dim, 1.0f, 0.2f));
      SPECD_TRY(b.vector(n + "attn_k_norm.weight", s.head_dim, 1.0f, 0.2f));
    }
    SPECD_TRY(b.vector(n + "ffn_norm.weight", s.dim, 1.0f, 0.2f));
    SPECD_TRY(b.matrix(n + "ffn_gate.weight", s.ffn, s.dim, in_dim));
    SPECD_TRY(b.matrix(n + "ffn_up.weight", s.ffn, s.dim, in_dim));
    SPECD_TRY(b.matrix(n + "ffn_down.weight", s.dim, s.ffn, 1.0 / std::sqrt(static_cast<double>(s.ffn))));
  }
  SPECD_TRY(w.write(a.out));
  std::fprintf(stderr, "specd-random-model: wrote %s: %s %s, vocab %" PRId64 ", %s\n", a.out.c_str(), a.arch.c_str(),
               a.shape.c_str(), vocab, specd::ggml_type_name(a.type));
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  return specd::tools::tool_main("specd-random-model", kUsage, argc, argv,
                                 {"arch", "vocab", "out", "shape", "type", "seed", "chat-template"}, args_from, run);
}
