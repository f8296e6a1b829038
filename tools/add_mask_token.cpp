// specd-add-mask: copies a LLaMA GGUF and gives it a MASK token (untrained, but a valid model for
// the engine's TiDAR and diffusion decoders).
//
// docs: methods/tidar.md §1 (one extra input token [MASK]) and §9 (its embedding initialised to the
// mean of the token embeddings). The new id is the old vocab size: token_embd.weight gets one more
// row (the mean of the others); an untied output.weight gets one too (the mean, so the head's logits
// on ordinary tokens are unchanged and MASK is an ordinary, never-favoured-by-training candidate);
// the tokenizer arrays get "<mask>" (score 0, token_type 3 = control, never produced by the text
// tokenizer). Metadata: specd.mask_token_id, and per --kind specd.tidar.block_len or
// specd.dllm.block_len / specd.dllm.logit_shift.
#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "kernels/result.h"
#include "kernels/cpu/matmul.h"
#include "tools/tool_main.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using specd::make_error;
using specd::Result;
using specd::Status;
using specd::GgmlType;
using specd::engine::GgufFile;
using specd::engine::GgufValue;
using specd::engine::GgufValueType;
using specd::engine::GgufWriter;

struct Args {
  std::string model, out, kind = "tidar";
  int64_t logit_shift = 1, block_len = 8;
};

const char* kUsage =
    "usage: specd-add-mask --model IN.gguf --out OUT.gguf [--logit-shift 0|1] [--block-len N]\n"
    "                      [--kind tidar|diffusion]\n"
    "  Appends a MASK token (id = old vocab; embedding = mean of the others) and sets\n"
    "  specd.mask_token_id; --kind tidar (default) sets specd.tidar.block_len, --kind diffusion (for the\n"
    "  lopa decoder; also spelt dllm) sets specd.dllm.block_len and specd.dllm.logit_shift (default 1).\n"
    "  --block-len defaults to 8.\n";

Result<Args> args_from(const specd::cli::CliArgs& c) {
  Args a{c.str("model"), c.str("out"), c.str("kind", "tidar")};
  if (a.model.empty() || a.out.empty()) return make_error(SPECD_E_INVALID_ARG, "--model and --out are required");
  if (a.kind == "diffusion") a.kind = "dllm";  // the user-facing name; "dllm" is the metadata's
  if (a.kind != "tidar" && a.kind != "dllm")
    return make_error(SPECD_E_INVALID_ARG, "unknown --kind %s (tidar|diffusion)", a.kind.c_str());
  auto shift = c.integer("logit-shift", 1, 0, 1);
  auto block = c.integer("block-len", 8, 1, 1024);
  if (!shift) return shift.error();
  if (!block) return block.error();
  a.logit_shift = *shift;
  a.block_len = *block;
  return a;
}

// A [rows][cols] matrix with one more row, the mean of the existing ones, in the tensor's own type.
Status grow_matrix(const specd::engine::GgufTensorInfo& t, int64_t vocab, std::vector<uint8_t>& out) {
  if (t.n_dims != 2 || t.ne[1] != vocab)
    return make_error(SPECD_E_BAD_MODEL, "%.*s is not a [%" PRId64 " x dim] matrix", static_cast<int>(t.name.size()),
                      t.name.data(), vocab);
  const int64_t cols = t.ne[0];
  const size_t row_bytes = specd::ggml_row_bytes(t.type, cols);
  specd::kernels::WeightView w{t.type, t.data, vocab, cols, row_bytes};
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<double> acc(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < vocab; ++r) {
    specd::kernels::weight_row_to_f32(w, r, row.data());
    for (int64_t c = 0; c < cols; ++c) acc[static_cast<size_t>(c)] += row[static_cast<size_t>(c)];
  }
  for (int64_t c = 0; c < cols; ++c)
    row[static_cast<size_t>(c)] = static_cast<float>(acc[static_cast<size_t>(c)] / static_cast<double>(vocab));
  out.assign(row_bytes * static_cast<size_t>(vocab + 1), 0);
  std::memcpy(out.data(), t.data, row_bytes * static_cast<size_t>(vocab));
  uint8_t* dst = out.data() + row_bytes * static_cast<size_t>(vocab);
  auto* h = reinterpret_cast<uint16_t*>(dst);
  switch (t.type) {
    case GgmlType::F32: std::memcpy(dst, row.data(), row.size() * sizeof(float)); break;
    case GgmlType::F16: for (int64_t c = 0; c < cols; ++c) h[c] = specd::kernels::f32_to_f16(row[c]); break;
    case GgmlType::BF16: for (int64_t c = 0; c < cols; ++c) h[c] = specd::kernels::f32_to_bf16(row[c]); break;
    case GgmlType::Q8_0: specd::kernels::quantize_q8_0(row.data(), cols, dst); break;
    default:
      return make_error(SPECD_E_UNSUPPORTED, "%.*s has an unsupported tensor type",
                        static_cast<int>(t.name.size()), t.name.data());
  }
  return {};
}

// The tokenizer arrays with "<mask>" appended (when the model has them).
Status extend_tokenizer(const GgufFile& f, int64_t vocab, GgufWriter& w) {
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  if (!tokens) return {};
  if (tokens->type != GgufValueType::ARRAY || tokens->elem_type != GgufValueType::STRING)
    return make_error(SPECD_E_BAD_MODEL, "tokenizer.ggml.tokens is not an array of strings");
  const auto n = static_cast<int64_t>(tokens->count);
  if (n != vocab)
    return make_error(SPECD_E_BAD_MODEL, "the tokenizer has %" PRId64 " tokens but the embedding %" PRId64 " rows", n,
                      vocab);
  std::vector<std::string> pieces;
  for (const auto& s : tokens->strings) pieces.emplace_back(s);
  pieces.emplace_back("<mask>");
  w.set_array_string("tokenizer.ggml.tokens", pieces);
  if (const GgufValue* sc = f.find("tokenizer.ggml.scores"); sc && sc->type == GgufValueType::ARRAY) {
    std::vector<float> v;
    for (uint64_t j = 0; j < sc->count; ++j) v.push_back(static_cast<float>(GgufFile::array_float(*sc, j)));
    v.push_back(0.0f);
    w.set_array_f32("tokenizer.ggml.scores", v);
  }
  if (const GgufValue* ty = f.find("tokenizer.ggml.token_type"); ty && ty->type == GgufValueType::ARRAY) {
    std::vector<int32_t> v;
    for (uint64_t j = 0; j < ty->count; ++j) v.push_back(static_cast<int32_t>(GgufFile::array_int(*ty, j)));
    v.push_back(3);  // control
    w.set_array_i32("tokenizer.ggml.token_type", v);
  }
  return {};
}

Status add_mask(const Args& a) {
  auto file = GgufFile::open(a.model);
  if (!file) return file.error();
  const GgufFile& f = **file;
  const auto* embd = f.tensor("token_embd.weight");
  if (!embd) return make_error(SPECD_E_BAD_MODEL, "no token_embd.weight");
  const int64_t vocab = embd->ne[1];
  if (auto m = f.get_int("specd.mask_token_id"); m && *m >= 0)
    return make_error(SPECD_E_BAD_MODEL, "the model already has a MASK token (id %" PRId64 ")", *m);

  GgufWriter w;
  for (const auto& kv : f.metadata()) SPECD_TRY(w.copy_kv(kv));
  SPECD_TRY(extend_tokenizer(f, vocab, w));
  w.set_i32("specd.mask_token_id", static_cast<int32_t>(vocab));
  if (a.kind == "tidar") {
    w.set_i32("specd.tidar.block_len", static_cast<int32_t>(a.block_len));
  } else {
    w.set_i32("specd.dllm.logit_shift", static_cast<int32_t>(a.logit_shift));
    w.set_i32("specd.dllm.block_len", static_cast<int32_t>(a.block_len));
  }
  if (f.find("llama.vocab_size")) w.set_u32("llama.vocab_size", static_cast<uint32_t>(vocab + 1));

  std::vector<std::unique_ptr<std::vector<uint8_t>>> grown;  // borrowed by the writer until write()
  for (const auto& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    const std::string name(t.name);
    if (name == "token_embd.weight" || name == "output.weight") {
      auto& buf = *grown.emplace_back(std::make_unique<std::vector<uint8_t>>());
      SPECD_TRY(grow_matrix(t, vocab, buf));
      ne[1] = vocab + 1;
      SPECD_TRY(w.add_tensor(name, t.type, ne, {buf.data(), buf.size()}));
    } else {
      SPECD_TRY(w.add_tensor(name, t.type, ne, {t.data, t.nbytes}));
    }
  }
  SPECD_TRY(w.write(a.out));
  std::fprintf(stderr, "specd-add-mask: wrote %s: vocab %" PRId64 ", mask id %" PRId64 ", %s block_len %" PRId64 "\n",
               a.out.c_str(), vocab + 1, vocab, a.kind.c_str(), a.block_len);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  return specd::tools::tool_main("specd-add-mask", kUsage, argc, argv,
                                 {"model", "out", "kind", "logit-shift", "block-len"}, args_from, add_mask);
}
