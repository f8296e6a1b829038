// specd-convert: a llama2.c legacy (version 0) checkpoint + tokenizer → a llama GGUF.
//
// The output follows llama.cpp's key and tensor names, so stories260K.bin + tok512.bin give the
// tensors and vocabulary of the published stories260K.gguf bit for bit (test_tools.cpp checks).
// Q/K rows are NOT permuted: llama2.c and llama.cpp's NORM rope both rotate adjacent pairs.
#include "engine/gguf_writer.h"
#include "kernels/result.h"
#include "tools/tool_main.h"
#include "kernels/cpu/matmul.h"

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using specd::Error;
using specd::make_error;
using specd::Result;
using specd::Status;
using specd::GgmlType;
using specd::engine::GgufWriter;

struct Args {
  std::string model, tokenizer, out;
  GgmlType type = GgmlType::F32;
  int64_t ctx = 0;  // 0: the checkpoint's seq_len
};

// The 7 x int32 header of a legacy checkpoint. A negative vocab means an unshared classifier.
struct Header {
  int32_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
};

struct Checkpoint {
  Header h{};
  bool shared = true;
  int64_t vocab = 0, head_dim = 0, kv_dim = 0;
  std::vector<float> w;  // every float after the header, in file order
};

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

Result<std::vector<uint8_t>> read_all(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(SPECD_E_IO, "cannot open %s file %s", what, path.c_str());
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return make_error(SPECD_E_IO, "cannot read %s file %s", what, path.c_str());
  return bytes;
}

Status check_header(const Header& h) {
  // Far above any llama2.c model, and small enough that the byte count below cannot overflow
  // (every product of three dims stays under 2^56); garbage headers fail here, before any sizing.
  const int32_t limit = 1 << 18;
  const int64_t dims[] = {h.dim, h.hidden, h.layers, h.heads, h.kv_heads, h.vocab < 0 ? -int64_t{h.vocab} : h.vocab,
                          h.seq_len};
  for (int64_t d : dims)
    if (d <= 0 || d > limit)
      return make_error(SPECD_E_BAD_MODEL,
                        "bad header: dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq_len=%d "
                        "(each must be in 1..%d)",
                        h.dim, h.hidden, h.layers, h.heads, h.kv_heads, h.vocab, h.seq_len, limit);
  if (h.dim % h.heads != 0 || (h.dim / h.heads) % 2 != 0)
    return make_error(SPECD_E_BAD_MODEL, "bad header: dim %d is not heads %d x an even head size", h.dim,
                      h.heads);
  if (h.heads % h.kv_heads != 0)
    return make_error(SPECD_E_BAD_MODEL, "bad header: heads %d not a multiple of kv_heads %d", h.heads,
                      h.kv_heads);
  return {};
}

// Floats the header implies after it, in file order (freq_cis included; wcls if unshared).
int64_t expected_floats(const Checkpoint& c) {
  const int64_t d = c.h.dim, f = c.h.hidden, L = c.h.layers;
  int64_t n = c.vocab * d;                       // token_embedding
  n += L * d * 2;                                // rms_att, rms_ffn
  n += L * d * d * 2 + L * d * c.kv_dim * 2;     // wq, wo, wk, wv
  n += L * d * f * 3;                            // w1, w2, w3
  n += d;                                        // rms_final
  n += int64_t{c.h.seq_len} * c.head_dim;        // freq_cis_real + freq_cis_imag (unused)
  if (!c.shared) n += c.vocab * d;               // wcls
  return n;
}

Result<Checkpoint> load_checkpoint(const std::string& path) {
  auto bytes = read_all(path, "model");
  if (!bytes) return bytes.error();
  const std::vector<uint8_t>& b = bytes.value();
  Checkpoint c;
  if (b.size() < sizeof(Header))
    return make_error(SPECD_E_BAD_MODEL, "%s: truncated header (%zu bytes, need %zu)", path.c_str(), b.size(),
                      sizeof(Header));
  std::memcpy(&c.h, b.data(), sizeof(Header));
  if (Status s = check_header(c.h); !s)
    return make_error(SPECD_E_BAD_MODEL, "%s: %s", path.c_str(), s.error().message.c_str());
  c.shared = c.h.vocab > 0;
  c.vocab = c.shared ? c.h.vocab : -int64_t{c.h.vocab};
  c.head_dim = c.h.dim / c.h.heads;
  c.kv_dim = c.head_dim * c.h.kv_heads;
  const uint64_t want = sizeof(Header) + 4 * static_cast<uint64_t>(expected_floats(c));
  if (b.size() < want)
    return make_error(SPECD_E_BAD_MODEL, "%s: truncated: the header implies %" PRIu64 " bytes, the file has %zu",
                      path.c_str(), want, b.size());
  if (b.size() > want)
    return make_error(SPECD_E_BAD_MODEL,
                      "%s: inconsistent size: %" PRIu64 " bytes after the weights the header implies "
                      "(not a legacy version-0 checkpoint?)",
                      path.c_str(), static_cast<uint64_t>(b.size() - want));
  c.w.resize(static_cast<size_t>(expected_floats(c)));
  std::memcpy(c.w.data(), b.data() + sizeof(Header), c.w.size() * sizeof(float));
  return c;
}

// llama.cpp's token types: 1 normal, 2 unknown, 3 control, 6 byte.
int32_t token_type(int64_t id, const std::string& piece) {
  if (id == 0) return 2;
  if (id == 1 || id == 2) return 3;
  if (piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece[5] == '>') return 6;
  return 1;
}

// llama2.c stores sentencepiece's U+2581 as a plain space and wraps BOS/EOS in newlines.
std::string gguf_piece(int64_t id, const std::string& raw) {
  if (id == 1) return "<s>";
  if (id == 2) return "</s>";
  std::string out;
  for (char ch : raw) out += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
  return out;
}

Result<Vocab> load_tokenizer(const std::string& path, int64_t vocab) {
  auto bytes = read_all(path, "tokenizer");
  if (!bytes) return bytes.error();
  const std::vector<uint8_t>& b = bytes.value();
  size_t pos = 4;  // skip max_token_length: the pieces carry their own lengths
  if (b.size() < pos) return make_error(SPECD_E_BAD_MODEL, "%s: truncated tokenizer header", path.c_str());
  Vocab v;
  for (int64_t id = 0; id < vocab; ++id) {
    float score;
    int32_t len;
    if (b.size() - pos < 8)
      return make_error(SPECD_E_BAD_MODEL, "%s: tokenizer truncated at token %" PRId64 " of %" PRId64,
                        path.c_str(), id, vocab);
    std::memcpy(&score, b.data() + pos, 4);
    std::memcpy(&len, b.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || static_cast<size_t>(len) > b.size() - pos)
      return make_error(SPECD_E_BAD_MODEL, "%s: token %" PRId64 " has bad length %d (tokenizer truncated?)",
                        path.c_str(), id, len);
    std::string raw(reinterpret_cast<const char*>(b.data() + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    v.tokens.push_back(gguf_piece(id, raw));
    v.scores.push_back(score);
    v.types.push_back(token_type(id, raw));
  }
  if (pos != b.size())
    return make_error(SPECD_E_BAD_MODEL, "%s: %zu bytes after %" PRId64 " tokens: tokenizer does not match the "
                      "model's vocab", path.c_str(), b.size() - pos, vocab);
  return v;
}

void set_metadata(GgufWriter& w, const Checkpoint& c, const Vocab& v, const Args& a) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", std::filesystem::path(a.model).stem().string());
  // The checkpoint's seq_len is what the model was trained on; llama.cpp's converter writes its own
  // default (2048) instead, which is why the published stories260K.gguf says 2048. --ctx overrides.
  w.set_u32("llama.context_length", static_cast<uint32_t>(a.ctx > 0 ? a.ctx : c.h.seq_len));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(c.h.dim));
  w.set_u32("llama.block_count", static_cast<uint32_t>(c.h.layers));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(c.h.hidden));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(c.h.heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.h.kv_heads));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);  // llama2.c hard-codes both
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_string("tokenizer.ggml.tokens", v.tokens);
  w.set_array_f32("tokenizer.ggml.scores", v.scores);
  w.set_array_i32("tokenizer.ggml.token_type", v.types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
}

// Owns converted copies of tensors (the writer borrows data until write()).
class TensorSink {
 public:
  TensorSink(GgufWriter& w, GgmlType type) : w_(w), type_(type) {}

  // Add a [rows][cols] f32 array; 2-D matrices take the requested type, vectors stay F32.
  Status add(const std::string& name, const float* x, int64_t rows, int64_t cols, bool matrix) {
    GgmlType t = matrix ? type_ : GgmlType::F32;
    if (t == GgmlType::Q8_0 && cols % 32 != 0) {
      // Q8_0 blocks run along a row; a row that is not a multiple of 32 cannot be stored that way.
      std::fprintf(stderr, "note: %s has rows of %" PRId64 " (not a multiple of 32): stored as F16\n",
                   name.c_str(), cols);
      t = GgmlType::F16;
    }
    std::vector<int64_t> ne = matrix ? std::vector<int64_t>{cols, rows} : std::vector<int64_t>{cols};
    const size_t n = static_cast<size_t>(rows * cols);
    if (t == GgmlType::F32)
      return w_.add_tensor(name, t, ne, {reinterpret_cast<const uint8_t*>(x), n * sizeof(float)});
    const size_t n_bytes = specd::ggml_row_bytes(t, cols) * static_cast<size_t>(rows);
    std::vector<uint8_t>& buf = owned_.emplace_back(n_bytes);
    auto* h = reinterpret_cast<uint16_t*>(buf.data());
    if (t == GgmlType::F16)
      for (size_t i = 0; i < n; ++i) h[i] = specd::kernels::f32_to_f16(x[i]);
    else if (t == GgmlType::BF16)
      for (size_t i = 0; i < n; ++i) h[i] = specd::kernels::f32_to_bf16(x[i]);
    else
      specd::kernels::quantize_q8_0(x, static_cast<int64_t>(n), buf.data());
    return w_.add_tensor(name, t, ne, buf);
  }

 private:
  GgufWriter& w_;
  GgmlType type_;
  std::vector<std::vector<uint8_t>> owned_;  // inner buffers keep their address when the outer grows
};

// Walks the checkpoint's arrays in file order and names them as llama.cpp does.
Status add_tensors(TensorSink& s, const Checkpoint& c) {
  const int64_t d = c.h.dim, f = c.h.hidden, L = c.h.layers, kv = c.kv_dim;
  const float* p = c.w.data();
  const float* embd = p;
  p += c.vocab * d;
  const float *rms_att = p, *wq = rms_att + L * d, *wk = wq + L * d * d, *wv = wk + L * kv * d;
  const float *wo = wv + L * kv * d, *rms_ffn = wo + L * d * d, *w1 = rms_ffn + L * d;
  const float *w2 = w1 + L * f * d, *w3 = w2 + L * d * f, *rms_final = w3 + L * f * d;
  const float* wcls = c.shared ? embd : rms_final + d + c.h.seq_len * c.head_dim;  // after freq_cis
  SPECD_TRY(s.add("token_embd.weight", embd, c.vocab, d, true));
  SPECD_TRY(s.add("output_norm.weight", rms_final, 1, d, false));
  // A shared classifier is still written as output.weight, as the published GGUF does.
  SPECD_TRY(s.add("output.weight", wcls, c.vocab, d, true));
  for (int64_t l = 0; l < L; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    SPECD_TRY(s.add(b + "attn_q.weight", wq + l * d * d, d, d, true));
    SPECD_TRY(s.add(b + "attn_k.weight", wk + l * kv * d, kv, d, true));
    SPECD_TRY(s.add(b + "attn_v.weight", wv + l * kv * d, kv, d, true));
    SPECD_TRY(s.add(b + "attn_output.weight", wo + l * d * d, d, d, true));
    SPECD_TRY(s.add(b + "attn_norm.weight", rms_att + l * d, 1, d, false));
    SPECD_TRY(s.add(b + "ffn_gate.weight", w1 + l * f * d, f, d, true));
    SPECD_TRY(s.add(b + "ffn_down.weight", w2 + l * d * f, d, f, true));
    SPECD_TRY(s.add(b + "ffn_up.weight", w3 + l * f * d, f, d, true));
    SPECD_TRY(s.add(b + "ffn_norm.weight", rms_ffn + l * d, 1, d, false));
  }
  return {};
}

const char* kUsage =
    "usage: specd-convert --model CHECKPOINT.bin --tokenizer TOKENIZER.bin --out OUT.gguf\n"
    "                     [--type f32|f16|bf16|q8_0] [--ctx N]\n"
    "  Converts a llama2.c legacy (version 0) checkpoint to GGUF. --type applies to 2-D matrices;\n"
    "  norms stay F32. --ctx sets llama.context_length (default: the checkpoint's seq_len).\n";

Result<Args> args_from(const specd::cli::CliArgs& c) {
  Args a;
  a.model = c.str("model");
  a.tokenizer = c.str("tokenizer");
  a.out = c.str("out");
  if (a.model.empty() || a.tokenizer.empty() || a.out.empty())
    return make_error(SPECD_E_INVALID_ARG, "--model, --tokenizer and --out are required");
  auto type = specd::tools::type_option(c, "type", GgmlType::F32,
                                        {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0});
  auto ctx = c.integer("ctx", 0, 0, INT32_MAX);
  if (!type) return type.error();
  if (!ctx) return ctx.error();
  a.type = *type;
  a.ctx = *ctx;
  return a;
}

Status convert(const Args& a) {
  auto ckpt = load_checkpoint(a.model);
  if (!ckpt) return ckpt.error();
  auto vocab = load_tokenizer(a.tokenizer, ckpt->vocab);
  if (!vocab) return vocab.error();
  GgufWriter w;
  set_metadata(w, *ckpt, *vocab, a);
  TensorSink sink(w, a.type);
  SPECD_TRY(add_tensors(sink, *ckpt));
  return w.write(a.out);
}

}  // namespace

int main(int argc, char** argv) {
  return specd::tools::tool_main("specd-convert", kUsage, argc, argv, {"model", "tokenizer", "out", "type", "ctx"},
                                 args_from, [](const Args& a) -> Status {
                                   SPECD_TRY(convert(a));
                                   std::fprintf(stderr, "specd-convert: wrote %s\n", a.out.c_str());
                                   return {};
                                 });
}
