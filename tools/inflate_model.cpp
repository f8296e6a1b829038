// specd-inflate: embeds a small LLaMA GGUF in a bigger shape that computes exactly the same function.
//
// docs: BENCHMARKS.md §2.2. The big residual stream is R·x (R: D×d with orthonormal columns), norm
// gains are folded into the matrices that read the normed input, and every other weight is Gaussian
// noise, except those that would write noise into the residual (Wo/W2 columns of dead heads, dead FFN
// units and padding layers), which are zero. Dense kernels still read every byte of them.
#include "engine/gguf_reader.h"
#include "engine/gguf_writer.h"
#include "kernels/result.h"
#include "tools/tool_main.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant_k.h"
#include "tools/inflate_drafter.h"
#include "tools/quant_recipe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using specd::make_error;
using specd::Result;
using specd::Status;
using specd::GgmlType;
using specd::engine::GgufFile;
using specd::engine::GgufWriter;

constexpr double kSigma = 0.02;      // the spread of dead weights
constexpr int64_t kChunkRows = 64;   // rows per RNG stream: output is independent of the thread count

// Defaults are TinyLlama-1.1B's shape; heads 0 means dim / the small model's head_dim.
struct Shape {
  int64_t dim = 2048, layers = 22, heads = 0, kv_heads = 32, ffn = 5632;
  int64_t ctx = 0;  // context length written to the file; 0: the small model's (RoPE computes any position)
};

struct Args {
  std::string model, out;
  std::string drafter, drafter_out;  // a ReDrafter drafter of the small model, carried over
  specd::tools::QuantRecipe type;  // F32 unless --type
  Shape big;
  uint64_t seed = 1;
};

// The small model, widened to double with its norm gains kept apart (they are folded per use).
struct Small {
  int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  uint32_t ctx = 0, rope_dims = 0;
  float eps = 1e-5f, theta = 10000.0f;
  std::string name;
  std::vector<double> embd, head, out_norm;  // head: output.weight, or token_embd when tied
  struct Layer {
    std::vector<double> attn_norm, ffn_norm, wq, wk, wv, wo, gate, up, down;
  };
  std::vector<Layer> blk;
};

// ---- random numbers: xoshiro256** seeded by splitmix64, Gaussians by Marsaglia's polar method ----

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) w = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  double symmetric() { return static_cast<double>(next() >> 11) * 0x1p-52 - 1.0; }  // [-1, 1)
  // n Gaussians of standard deviation sigma.
  void gaussian(float* out, int64_t n, double sigma) {
    for (int64_t k = 0; k < n; k += 2) {
      double u, v, s;
      do {
        u = symmetric();
        v = symmetric();
        s = u * u + v * v;
      } while (s >= 1.0 || s == 0.0);
      const double f = sigma * std::sqrt(-2.0 * std::log(s) / s);
      out[k] = static_cast<float>(u * f);
      if (k + 1 < n) out[k + 1] = static_cast<float>(v * f);
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// An independent stream per (seed, tensor, chunk of rows).
Rng stream(uint64_t seed, uint64_t tensor, uint64_t chunk) {
  uint64_t x = seed;
  uint64_t a = splitmix64(x) ^ (tensor * 0xD1B54A32D192ED03ull);
  uint64_t b = splitmix64(a) ^ (chunk * 0xABC98388FB8FAC03ull);
  return Rng(splitmix64(b));
}

// R: D×d, column-major in columns of D, orthonormal by modified Gram-Schmidt of a Gaussian matrix.
std::vector<double> orthonormal_columns(int64_t D, int64_t d, uint64_t seed) {
  Rng rng = stream(seed, ~0ull, 0);
  std::vector<float> g(static_cast<size_t>(D * d));
  rng.gaussian(g.data(), D * d, 1.0);
  std::vector<double> q(g.begin(), g.end());
  for (int64_t c = 0; c < d; ++c) {
    double* qc = &q[static_cast<size_t>(c * D)];
    for (int pass = 0; pass < 2; ++pass)  // twice is enough for orthogonality to rounding level
      for (int64_t p = 0; p < c; ++p) {
        const double* qp = &q[static_cast<size_t>(p * D)];
        double dot = 0;
        for (int64_t k = 0; k < D; ++k) dot += qp[k] * qc[k];
        for (int64_t k = 0; k < D; ++k) qc[k] -= dot * qp[k];
      }
    double norm = 0;
    for (int64_t k = 0; k < D; ++k) norm += qc[k] * qc[k];
    norm = std::sqrt(norm);
    for (int64_t k = 0; k < D; ++k) qc[k] /= norm;
  }
  return q;
}

// ---- reading the small model ----

Result<std::vector<double>> read_matrix(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  const auto* t = f.tensor(name);
  if (!t) return make_error(SPECD_E_BAD_MODEL, "missing tensor %s", name.c_str());
  const int64_t want_dims = rows == 1 ? 1 : 2;
  if (t->ne[0] != cols || t->n_elements() != rows * cols || t->n_dims != static_cast<uint32_t>(want_dims))
    return make_error(SPECD_E_BAD_MODEL, "shape mismatch for %s: want [%" PRId64 " x %" PRId64 "]", name.c_str(),
                      rows, cols);
  specd::kernels::WeightView w{t->type, t->data, rows, cols, specd::ggml_row_bytes(t->type, cols)};
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<double> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    specd::kernels::weight_row_to_f32(w, r, row.data());
    std::copy(row.begin(), row.end(), out.begin() + r * cols);
  }
  return out;
}

Status read_config(const GgufFile& f, Small& s) {
  auto arch = f.get_string("general.architecture");
  if (!arch || *arch != "llama")
    return make_error(SPECD_E_UNSUPPORTED, "general.architecture is not \"llama\"");
  auto u = [&](const char* k) { return f.get_uint(std::string("llama.") + k); };
  auto dim = u("embedding_length"), layers = u("block_count"), heads = u("attention.head_count");
  auto ffn = u("feed_forward_length");
  const auto* embd = f.tensor("token_embd.weight");
  if (!dim || !layers || !heads || !ffn || !embd || *heads == 0 || *dim % *heads != 0)
    return make_error(SPECD_E_BAD_MODEL, "incomplete llama metadata (embedding/block/head/ffn) or no token_embd");
  s.dim = static_cast<int64_t>(*dim), s.layers = static_cast<int64_t>(*layers);
  s.heads = static_cast<int64_t>(*heads), s.ffn = static_cast<int64_t>(*ffn);
  s.kv_heads = static_cast<int64_t>(u("attention.head_count_kv").value_or(*heads));
  s.head_dim = static_cast<int64_t>(u("attention.key_length").value_or(*dim / *heads));
  if (s.kv_heads == 0 || s.heads % s.kv_heads != 0 || s.head_dim * s.heads != s.dim)
    return make_error(SPECD_E_BAD_MODEL, "unsupported head layout (heads %" PRId64 ", kv %" PRId64 ")", s.heads,
                      s.kv_heads);
  s.vocab = embd->ne[1];
  s.ctx = static_cast<uint32_t>(u("context_length").value_or(2048));
  s.rope_dims = static_cast<uint32_t>(u("rope.dimension_count").value_or(static_cast<uint64_t>(s.head_dim)));
  s.eps = static_cast<float>(f.get_float("llama.attention.layer_norm_rms_epsilon").value_or(1e-5));
  s.theta = static_cast<float>(f.get_float("llama.rope.freq_base").value_or(10000.0));
  s.name = std::string(f.get_string("general.name").value_or("model"));
  return {};
}

Status read_small(const GgufFile& f, Small& s) {
  SPECD_TRY(read_config(f, s));
  const int64_t d = s.dim, q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  auto get = [&](std::vector<double>& dst, const std::string& name, int64_t rows, int64_t cols) -> Status {
    auto m = read_matrix(f, name, rows, cols);
    if (!m) return m.error();
    dst = std::move(m.value());
    return {};
  };
  SPECD_TRY(get(s.embd, "token_embd.weight", s.vocab, d));
  SPECD_TRY(get(s.out_norm, "output_norm.weight", 1, d));
  if (f.tensor("output.weight")) SPECD_TRY(get(s.head, "output.weight", s.vocab, d));
  else s.head = s.embd;
  s.blk.resize(static_cast<size_t>(s.layers));
  for (int64_t l = 0; l < s.layers; ++l) {
    Small::Layer& L = s.blk[static_cast<size_t>(l)];
    const std::string b = "blk." + std::to_string(l) + ".";
    SPECD_TRY(get(L.attn_norm, b + "attn_norm.weight", 1, d));
    SPECD_TRY(get(L.ffn_norm, b + "ffn_norm.weight", 1, d));
    SPECD_TRY(get(L.wq, b + "attn_q.weight", q, d));
    SPECD_TRY(get(L.wk, b + "attn_k.weight", kv, d));
    SPECD_TRY(get(L.wv, b + "attn_v.weight", kv, d));
    SPECD_TRY(get(L.wo, b + "attn_output.weight", d, q));
    SPECD_TRY(get(L.gate, b + "ffn_gate.weight", s.ffn, d));
    SPECD_TRY(get(L.up, b + "ffn_up.weight", s.ffn, d));
    SPECD_TRY(get(L.down, b + "ffn_down.weight", d, s.ffn));
  }
  return {};
}

Status check_shape(const Small& s, Shape& b) {
  if (b.heads == 0 && b.dim % s.head_dim == 0) b.heads = b.dim / s.head_dim;
  const int64_t gs = s.heads / s.kv_heads;
  if (b.dim < s.dim || b.dim > 65536 || b.heads * s.head_dim != b.dim)
    return make_error(SPECD_E_INVALID_ARG, "--dim %" PRId64 " --heads %" PRId64 ": need dim >= %" PRId64
                      " and heads x %" PRId64 " (the small head size, kept) = dim", b.dim, b.heads, s.dim, s.head_dim);
  if (b.kv_heads < s.kv_heads || b.heads % b.kv_heads != 0 || b.heads / b.kv_heads < gs)
    return make_error(SPECD_E_INVALID_ARG, "--kv-heads %" PRId64 " must be >= %" PRId64 ", divide --heads and "
                      "leave groups of >= %" PRId64 " query heads", b.kv_heads, s.kv_heads, gs);
  if (b.ffn < s.ffn || b.layers < s.layers || b.ffn > (1 << 20) || b.layers > 1024)
    return make_error(SPECD_E_INVALID_ARG, "--ffn and --layers must be at least the small model's (%" PRId64
                      ", %" PRId64 ")", s.ffn, s.layers);
  return {};
}

// ---- building the big tensors ----

// Fills row r of a big tensor: live rows copy folded small weights, the rest draw from rng.
using RowFn = std::function<void(int64_t r, float* row, Rng& rng)>;

class Inflater {
 public:
  Inflater(const Small& s, const Shape& b, const specd::tools::QuantRecipe& type, uint64_t seed)
      : s_(s), b_(b), type_(type), seed_(seed), R_(orthonormal_columns(b.dim, s.dim, seed)),
        gain_(std::sqrt(static_cast<double>(s.dim) / static_cast<double>(b.dim))) {}

  Status build(GgufWriter& w);
  size_t bytes() const { return total_bytes_; }

  // out[D] = R · (v ⊙ g): a small-space row (a reader of the normed residual) moved to big space.
  void lift(const double* v, const double* g, float* out) const {
    std::vector<double> acc(static_cast<size_t>(b_.dim), 0.0);
    for (int64_t c = 0; c < s_.dim; ++c) {
      const double x = v[c] * (g ? g[c] : 1.0);
      const double* rc = &R_[static_cast<size_t>(c * b_.dim)];
      for (int64_t k = 0; k < b_.dim; ++k) acc[static_cast<size_t>(k)] += rc[k] * x;
    }
    for (int64_t k = 0; k < b_.dim; ++k) out[k] = static_cast<float>(acc[static_cast<size_t>(k)]);
  }

 private:
  // (R · M)[k][col] for a small [d][cols] matrix M: a writer into the residual moved to big space.
  double lift_col(const std::vector<double>& m, int64_t cols, int64_t k, int64_t col) const {
    double acc = 0;
    for (int64_t c = 0; c < s_.dim; ++c)
      acc += R_[static_cast<size_t>(c * b_.dim + k)] * m[static_cast<size_t>(c * cols + col)];
    return acc;
  }
  // Small query head feeding big head j, or -1 for a dead head (the §2.2 map, inverted).
  int64_t small_head(int64_t j) const {
    const int64_t gs = s_.heads / s_.kv_heads, G = b_.heads / b_.kv_heads, kv = j / G, m = j % G;
    return kv < s_.kv_heads && m < gs ? kv * gs + m : -1;
  }
  Status add(GgufWriter& w, const std::string& name, int64_t rows, int64_t cols, const RowFn& fn);
  Status add_norm(GgufWriter& w, const std::string& name);
  Status add_layer(GgufWriter& w, int64_t l);
  Status add_padding_layer(GgufWriter& w, int64_t l);

  const Small& s_;
  Shape b_;
  specd::tools::QuantRecipe type_;
  uint64_t seed_;
  std::vector<double> R_;  // column c at [c*D, (c+1)*D)
  double gain_;            // every big norm gain: sqrt(d/D), so that the big rms equals the small one
  uint64_t n_tensors_ = 0;
  // The writer borrows these until write(). Not zero-filled: the workers touch (and fault in) every
  // page themselves, in parallel, instead of one thread clearing gigabytes first.
  std::vector<std::unique_ptr<uint8_t[]>> data_;
  size_t total_bytes_ = 0;
};

void store_row(GgmlType t, const float* row, int64_t cols, uint8_t* dst) {
  auto* h = reinterpret_cast<uint16_t*>(dst);
  if (t == GgmlType::F32) std::memcpy(dst, row, static_cast<size_t>(cols) * sizeof(float));
  else if (t == GgmlType::F16) for (int64_t k = 0; k < cols; ++k) h[k] = specd::kernels::f32_to_f16(row[k]);
  else if (t != GgmlType::BF16) specd::kernels::quantize_row(t, row, cols, dst);  // Q8_0, Q4_0 and the K types
  else for (int64_t k = 0; k < cols; ++k) h[k] = specd::kernels::f32_to_bf16(row[k]);
}

// Generate a [rows][cols] tensor in parallel chunks, converting each row to the output type.
Status Inflater::add(GgufWriter& w, const std::string& name, int64_t rows, int64_t cols, const RowFn& fn) {
  const GgmlType t = rows == 1 ? GgmlType::F32 : specd::tools::recipe_type(type_, name, cols, b_.layers);
  const size_t row_bytes = specd::ggml_row_bytes(t, cols);
  const size_t n_bytes = row_bytes * static_cast<size_t>(rows);
  uint8_t* buf = data_.emplace_back(std::make_unique_for_overwrite<uint8_t[]>(n_bytes)).get();
  total_bytes_ += n_bytes;
  const uint64_t id = n_tensors_++;
  const int64_t n_chunks = (rows + kChunkRows - 1) / kChunkRows;
  std::atomic<int64_t> next{0};
  auto work = [&] {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
      Rng rng = stream(seed_, id, static_cast<uint64_t>(c));
      for (int64_t r = c * kChunkRows; r < std::min(rows, (c + 1) * kChunkRows); ++r) {
        fn(r, row.data(), rng);
        store_row(t, row.data(), cols, buf + static_cast<size_t>(r) * row_bytes);
      }
    }
  };
  {
    std::vector<std::jthread> pool;
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (int64_t i = 1; i < static_cast<int64_t>(n) && i < n_chunks; ++i) pool.emplace_back(work);
    work();
  }
  std::vector<int64_t> ne = rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
  return w.add_tensor(name, t, ne, {buf, n_bytes});
}

Status Inflater::add_norm(GgufWriter& w, const std::string& name) {
  return add(w, name, 1, b_.dim, [&](int64_t, float* row, Rng&) {
    for (int64_t k = 0; k < b_.dim; ++k) row[k] = static_cast<float>(gain_);
  });
}

Status Inflater::add_layer(GgufWriter& w, int64_t l) {
  const Small::Layer& L = s_.blk[static_cast<size_t>(l)];
  const int64_t D = b_.dim, hd = s_.head_dim, d = s_.dim, q_small = s_.heads * hd;
  const std::string b = "blk." + std::to_string(l) + ".";
  // A matrix that reads the normed residual: live rows are folded small rows, the others noise.
  auto reader = [this, D, d](const std::vector<double>& m, const std::vector<double>& g, auto live_row) {
    return [this, D, d, mp = m.data(), gp = g.data(), live_row](int64_t r, float* row, Rng& rng) {
      const int64_t src = live_row(r);
      if (src < 0) rng.gaussian(row, D, kSigma);
      else lift(mp + src * d, gp, row);
    };
  };
  auto q_row = [&](int64_t r) { const int64_t i = small_head(r / hd); return i < 0 ? -1 : i * hd + r % hd; };
  auto kv_row = [&](int64_t r) { return r < s_.kv_heads * hd ? r : -1; };
  auto ffn_row = [&](int64_t r) { return r < s_.ffn ? r : -1; };
  SPECD_TRY(add(w, b + "attn_q.weight", D, D, reader(L.wq, L.attn_norm, q_row)));
  SPECD_TRY(add(w, b + "attn_k.weight", b_.kv_heads * hd, D, reader(L.wk, L.attn_norm, kv_row)));
  SPECD_TRY(add(w, b + "attn_v.weight", b_.kv_heads * hd, D, reader(L.wv, L.attn_norm, kv_row)));
  SPECD_TRY(add(w, b + "attn_output.weight", D, D, [&](int64_t k, float* row, Rng&) {
    for (int64_t col = 0; col < D; ++col) {
      const int64_t i = small_head(col / hd);  // dead heads write nothing: zero columns
      row[col] = i < 0 ? 0.0f : static_cast<float>(lift_col(L.wo, q_small, k, i * hd + col % hd));
    }
  }));
  SPECD_TRY(add_norm(w, b + "attn_norm.weight"));
  SPECD_TRY(add(w, b + "ffn_gate.weight", b_.ffn, D, reader(L.gate, L.ffn_norm, ffn_row)));
  SPECD_TRY(add(w, b + "ffn_down.weight", D, b_.ffn, [&](int64_t k, float* row, Rng&) {
    for (int64_t col = 0; col < b_.ffn; ++col)
      row[col] = col < s_.ffn ? static_cast<float>(lift_col(L.down, s_.ffn, k, col)) : 0.0f;
  }));
  SPECD_TRY(add(w, b + "ffn_up.weight", b_.ffn, D, reader(L.up, L.ffn_norm, ffn_row)));
  return add_norm(w, b + "ffn_norm.weight");
}

// A layer past the small model's depth: noise everywhere it reads, zeros where it writes.
Status Inflater::add_padding_layer(GgufWriter& w, int64_t l) {
  const int64_t D = b_.dim, kv = b_.kv_heads * s_.head_dim;
  const std::string b = "blk." + std::to_string(l) + ".";
  RowFn noise = [&](int64_t, float* row, Rng& rng) { rng.gaussian(row, D, kSigma); };
  auto zeros = [](int64_t n) { return RowFn([n](int64_t, float* row, Rng&) { std::fill(row, row + n, 0.0f); }); };
  SPECD_TRY(add(w, b + "attn_q.weight", D, D, noise));
  SPECD_TRY(add(w, b + "attn_k.weight", kv, D, noise));
  SPECD_TRY(add(w, b + "attn_v.weight", kv, D, noise));
  SPECD_TRY(add(w, b + "attn_output.weight", D, D, zeros(D)));
  SPECD_TRY(add_norm(w, b + "attn_norm.weight"));
  SPECD_TRY(add(w, b + "ffn_gate.weight", b_.ffn, D, noise));
  SPECD_TRY(add(w, b + "ffn_down.weight", D, b_.ffn, zeros(b_.ffn)));
  SPECD_TRY(add(w, b + "ffn_up.weight", b_.ffn, D, noise));
  return add_norm(w, b + "ffn_norm.weight");
}

Status Inflater::build(GgufWriter& w) {
  const int64_t d = s_.dim;
  SPECD_TRY(add(w, "token_embd.weight", s_.vocab, b_.dim, [&](int64_t t, float* row, Rng&) {
    lift(&s_.embd[static_cast<size_t>(t * d)], nullptr, row);
  }));
  SPECD_TRY(add_norm(w, "output_norm.weight"));
  // Untied head: the small final-norm gain is folded in because the big one is the uniform gain_.
  SPECD_TRY(add(w, "output.weight", s_.vocab, b_.dim, [&](int64_t t, float* row, Rng&) {
    lift(&s_.head[static_cast<size_t>(t * d)], s_.out_norm.data(), row);
  }));
  for (int64_t l = 0; l < b_.layers; ++l) SPECD_TRY(l < s_.layers ? add_layer(w, l) : add_padding_layer(w, l));
  return {};
}

// ---- metadata, arguments, main ----

Status set_metadata(GgufWriter& w, const GgufFile& f, const Small& s, const Shape& b, uint64_t seed) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", s.name + "-inflated-" + std::to_string(b.dim) + "x" + std::to_string(b.layers));
  w.set_u32("llama.context_length", b.ctx > 0 ? static_cast<uint32_t>(b.ctx) : s.ctx);
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(b.dim));
  w.set_u32("llama.block_count", static_cast<uint32_t>(b.layers));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(b.ffn));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(b.heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(b.kv_heads));
  w.set_u32("llama.rope.dimension_count", s.rope_dims);
  w.set_f32("llama.rope.freq_base", s.theta);
  // Scaled so that sqrt(|Rx|²/D + eps') = sqrt(d/D)·sqrt(|x|²/d + eps): the big rms is the small one × gain_.
  const double eps = static_cast<double>(s.eps) * static_cast<double>(s.dim) / static_cast<double>(b.dim);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(eps));
  w.set_u64("specd.inflate.seed", seed);
  // The tokenizer, and specd's own keys (a MASK token, TiDAR / diffusion settings) that describe
  // the function rather than the shape.
  for (const auto& kv : f.metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0 || (kv.key.rfind("specd.", 0) == 0 && kv.key != "specd.inflate.seed"))
      SPECD_TRY(w.copy_kv(kv));
  return {};
}

const char* kUsage =
    "usage: specd-inflate --model SMALL.gguf --out BIG.gguf [--type TYPE] [--seed N]\n"
    "                     [--dim 2048 --layers 22 --heads DIM/HEAD_DIM --kv-heads 32 --ffn 5632] [--ctx N]\n"
    "                     [--drafter DRAFTER.gguf --drafter-out BIG-DRAFTER.gguf]\n"
    "  Builds a model of the given shape that computes the same function as SMALL (BENCHMARKS.md §2.2),\n"
    "  and with --drafter, a ReDrafter drafter for it that drafts what DRAFTER drafts for SMALL.\n"
    "  --ctx sets the context length it declares (default SMALL's), e.g. 8192 to measure deep prefixes.\n"
    "  --type f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k, or the llama.cpp-style mixes q4_k_m|q5_k_m\n"
    "  (tools/quant_recipe.h); norm gains stay F32.\n";

Result<Args> args_from(const specd::cli::CliArgs& c) {
  Args a;
  a.model = c.str("model");
  a.out = c.str("out");
  a.drafter = c.str("drafter");
  a.drafter_out = c.str("drafter-out");
  if (a.model.empty() || a.out.empty()) return make_error(SPECD_E_INVALID_ARG, "--model and --out are required");
  if (a.drafter.empty() != a.drafter_out.empty())
    return make_error(SPECD_E_INVALID_ARG, "--drafter and --drafter-out go together");
  if (c.has("type")) {
    auto type = specd::tools::parse_quant_recipe(c.str("type"));
    if (!type) return type.error();
    a.type = *type;
  }
  const std::pair<const char*, int64_t*> dims[] = {{"dim", &a.big.dim}, {"layers", &a.big.layers},
                                                  {"heads", &a.big.heads}, {"kv-heads", &a.big.kv_heads},
                                                  {"ffn", &a.big.ffn}};
  for (const auto& [name, field] : dims) {
    auto v = c.integer(name, *field, 1, INT32_MAX);
    if (!v) return v.error();
    *field = *v;
  }
  auto ctx = c.integer("ctx", 0, 0, 1 << 20);
  if (!ctx) return ctx.error();
  a.big.ctx = *ctx;
  auto seed = c.integer("seed", static_cast<int64_t>(a.seed), 1, INT64_MAX);
  if (!seed) return seed.error();
  a.seed = static_cast<uint64_t>(*seed);
  return a;
}

Status inflate(Args& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto file = GgufFile::open(a.model);
  if (!file) return file.error();
  Small s;
  SPECD_TRY(read_small(**file, s));
  SPECD_TRY(check_shape(s, a.big));
  GgufWriter w;
  SPECD_TRY(set_metadata(w, **file, s, a.big, a.seed));
  Inflater inf(s, a.big, a.type, a.seed);
  SPECD_TRY(inf.build(w));
  const auto t1 = std::chrono::steady_clock::now();
  SPECD_TRY(w.write(a.out));
  if (!a.drafter.empty()) {
    auto d = GgufFile::open(a.drafter);
    if (!d) return d.error();
    auto lift = [&inf](const double* v, const double* g, float* out) { inf.lift(v, g, out); };
    SPECD_TRY(specd::tools::inflate_drafter(**d, lift, s.dim, a.big.dim, s.out_norm, a.out, a.drafter_out));
  }
  const auto t2 = std::chrono::steady_clock::now();
  auto sec = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::fprintf(stderr, "specd-inflate: wrote %s: dim %" PRId64 ", %" PRId64 " layers, %" PRId64 "/%" PRId64
               " heads, ffn %" PRId64 ", %.1f MB of tensors; generate %.1f s, write %.1f s\n",
               a.out.c_str(), a.big.dim, a.big.layers, a.big.heads, a.big.kv_heads, a.big.ffn,
               static_cast<double>(inf.bytes()) / 1e6, sec(t1 - t0), sec(t2 - t1));
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  return specd::tools::tool_main("specd-inflate", kUsage, argc, argv,
                                 {"model", "out", "type", "seed", "dim", "layers", "heads", "kv-heads", "ffn", "ctx",
                                  "drafter", "drafter-out"},
                                 args_from, inflate);
}
