// Model::load: hyper-parameters from GGUF metadata (per engine/model_arch.h) and validated views of every weight.
#include "engine/model.h"

#include "engine/model_arch.h"

#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace specd::engine {
namespace {

using kernels::WeightView;

struct Loader {
  const GgufFile& f;
  std::string arch;

  std::string key(const char* suffix) const { return arch + "." + suffix; }

  Result<int32_t> need_int(const char* suffix) const {
    auto v = f.get_uint(key(suffix));
    if (!v || *v == 0 || *v > (1u << 30))
      return make_error(SPECD_E_BAD_MODEL, "missing or invalid metadata %s", key(suffix).c_str());
    return static_cast<int32_t>(*v);
  }

  // An optional hyper-parameter: def when absent; present, it must be an integer in [lo, 2^30]
  // (a value of another type or out of range is refused, never replaced by the default).
  Result<int32_t> opt_int(const char* suffix, int32_t def, int32_t lo) const {
    if (!f.find(key(suffix))) return def;
    auto v = f.get_int(key(suffix));
    if (!v || *v < lo || *v > (1 << 30))
      return make_error(SPECD_E_BAD_MODEL, "metadata %s must be an integer in [%d, %d]", key(suffix).c_str(), lo, 1 << 30);
    return static_cast<int32_t>(*v);
  }

  // The tensor's bytes must fill its slot in the file up to the padding: a type field changed
  // after writing (F32 -> F16 halves what is read) would otherwise reinterpret the data silently.
  Status check_extent(const GgufTensorInfo& t) const {
    const auto bytes = f.bytes();
    size_t end = bytes.size();
    for (const auto& o : f.tensors())
      if (o.data > t.data && static_cast<size_t>(o.data - bytes.data()) < end) end = static_cast<size_t>(o.data - bytes.data());
    const size_t extent = end - static_cast<size_t>(t.data - bytes.data());
    if (extent < t.nbytes || extent - t.nbytes >= std::max<size_t>(f.alignment(), 1))
      return make_error(SPECD_E_BAD_MODEL, "tensor %s: type %s needs %zu bytes but the file holds %zu for it (a changed type?)",
                        std::string(t.name).c_str(), ggml_type_name(t.type), t.nbytes, extent);
    return {};
  }

  // A 2-D weight [rows][cols] stored with ne = {cols, rows}.
  Result<WeightView> matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const GgufTensorInfo* t = f.tensor(name);
    if (!t) return make_error(SPECD_E_BAD_MODEL, "missing tensor %s", name.c_str());
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
      return make_error(SPECD_E_BAD_MODEL, "shape mismatch for %s: file has [%lld, %lld], model needs [%lld, %lld]",
                        name.c_str(), static_cast<long long>(t->ne[0]), static_cast<long long>(t->ne[1]),
                        static_cast<long long>(cols), static_cast<long long>(rows));
    SPECD_TRY(check_extent(*t));
    WeightView w;
    w.type = t->type;
    w.data = t->data;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = ggml_row_bytes(t->type, cols);
    return w;
  }

  Result<std::vector<float>> vector(const std::string& name, int64_t n) const {
    const GgufTensorInfo* t = f.tensor(name);
    if (!t) return make_error(SPECD_E_BAD_MODEL, "missing tensor %s", name.c_str());
    if (t->n_elements() != n || t->ne[0] != n)
      return make_error(SPECD_E_BAD_MODEL, "shape mismatch for %s: expected %lld elements", name.c_str(),
                        static_cast<long long>(n));
    // 1-D weights (norm gains, biases, rope_freqs) are F32 in every converter (llama.cpp's and
    // tools/convert_llama2c.cpp); another type here is a damaged file, refused rather than converted.
    if (t->type != GgmlType::F32)
      return make_error(SPECD_E_BAD_MODEL, "tensor %s has type %s; 1-D weights must be F32", name.c_str(),
                        ggml_type_name(t->type));
    SPECD_TRY(check_extent(*t));
    WeightView w{t->type, t->data, 1, n, ggml_row_bytes(t->type, n)};
    std::vector<float> out(static_cast<size_t>(n));
    kernels::weight_row_to_f32(w, 0, out.data());
    return out;
  }
};

// Every error's message, joined: a file missing several keys or tensors names them all at once.
std::string joined(std::initializer_list<const Error*> errs) {
  std::string m;
  for (const Error* e : errs)
    if (e) {
      if (!m.empty()) m.append("; ");
      m.append(e->message);
    }
  return m;
}

// rope.scaling.type: none, or llama.cpp's "linear" (positions divided by rope.scaling.factor).
// Llama 3.x's scaling needs no key: it is the rope_freqs tensor the converter writes.
Status read_rope_scaling(const GgufFile& f, const Loader& l, ModelConfig& c) {
  const auto type = f.get_string(l.key("rope.scaling.type"));
  if (!type || *type == "none") return {};
  if (*type != "linear")
    return make_error(SPECD_E_UNSUPPORTED, "unsupported %s '%s' (supported: none, linear, and rope_freqs.weight)",
                      l.key("rope.scaling.type").c_str(), std::string(*type).c_str());
  const auto factor = f.get_float(l.key("rope.scaling.factor"));
  if (!factor || !(*factor >= 1.0))
    return make_error(SPECD_E_BAD_MODEL, "linear RoPE scaling needs %s ≥ 1", l.key("rope.scaling.factor").c_str());
  c.rope_freq_scale = static_cast<float>(1.0 / *factor);
  return {};
}

Result<ModelConfig> read_config(const GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) return make_error(SPECD_E_BAD_MODEL, "missing metadata general.architecture");
  c.arch = std::string(*arch);
  const ModelArch* spec = find_model_arch(c.arch);
  if (!spec)
    return make_error(SPECD_E_UNSUPPORTED, "unsupported architecture '%s' (supported: %s)", c.arch.c_str(),
                      supported_model_archs().c_str());
  c.rope = spec->rope;
  Loader l{f, c.arch};
  auto dim = l.need_int("embedding_length");
  auto layers = l.need_int("block_count");
  auto heads = l.need_int("attention.head_count");
  auto ffn = l.need_int("feed_forward_length");
  if (!dim || !layers || !heads || !ffn)
    return make_error(SPECD_E_BAD_MODEL, "%s",
                      joined({dim ? nullptr : &dim.error(), layers ? nullptr : &layers.error(),
                              heads ? nullptr : &heads.error(), ffn ? nullptr : &ffn.error()})
                          .c_str());
  c.dim = *dim;
  c.n_layers = *layers;
  c.n_heads = *heads;
  c.ffn_dim = *ffn;
  auto kv_heads = l.opt_int("attention.head_count_kv", c.n_heads, 1);
  auto head_dim = l.opt_int("attention.key_length", c.dim / c.n_heads, 1);
  auto ctx = l.opt_int("context_length", 2048, 1);
  if (!kv_heads) return kv_heads.error();
  if (!head_dim) return head_dim.error();
  if (!ctx) return ctx.error();
  if (auto vlen = l.opt_int("attention.value_length", *head_dim, 1); !vlen || *vlen != *head_dim)
    return make_error(SPECD_E_UNSUPPORTED, "metadata %s must equal the key length %d",
                      l.key("attention.value_length").c_str(), *head_dim);
  c.n_kv_heads = *kv_heads;
  c.head_dim = *head_dim;
  c.ctx_len = *ctx;
  // RoPE rotates pairs of a head's dimensions: the count must be positive, even and fit the head.
  // 0 would leave positions out of attention altogether, which changes every output silently.
  auto rope = l.opt_int("rope.dimension_count", c.head_dim, 0);
  if (!rope) return rope.error();
  c.rope_dims = *rope;
  if (c.rope_dims <= 0 || c.rope_dims % 2 != 0 || c.rope_dims > c.head_dim)
    return make_error(SPECD_E_BAD_MODEL, "metadata %s = %d: must be positive, even and at most the head dim %d",
                      l.key("rope.dimension_count").c_str(), c.rope_dims, c.head_dim);
  c.rope_theta = static_cast<float>(f.get_float(l.key("rope.freq_base")).value_or(10000.0));
  c.rms_eps = static_cast<float>(f.get_float(l.key("attention.layer_norm_rms_epsilon")).value_or(1e-5));
  SPECD_TRY(read_rope_scaling(f, l, c));
  if (auto layout = f.get_string("specd.rope.layout"); layout && *layout == "neox") c.rope = RopeLayout::Neox;
  c.bos = static_cast<int32_t>(f.get_uint("tokenizer.ggml.bos_token_id").value_or(1));
  c.eos = static_cast<int32_t>(f.get_uint("tokenizer.ggml.eos_token_id").value_or(2));
  c.mask = static_cast<int32_t>(f.get_int("specd.mask_token_id").value_or(-1));
  c.logit_shift = static_cast<int32_t>(f.get_int("specd.dllm.logit_shift").value_or(0));
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0 || c.head_dim <= 0 || c.head_dim > 512 || c.ctx_len <= 0 ||
      !(c.rms_eps > 0.0f) || !(c.rope_theta > 0.0f))
    return make_error(SPECD_E_BAD_MODEL, "inconsistent attention metadata (heads %d, kv heads %d, head dim %d, rope dims %d)",
                      c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dims);
  return c;
}

}  // namespace

std::string model_digest(const GgufFile& f) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  };
  const auto bytes = f.bytes();
  size_t header = bytes.size();
  for (const auto& t : f.tensors()) header = std::min(header, static_cast<size_t>(t.data - bytes.data()));
  mix(bytes.data(), header);
  for (const auto& t : f.tensors()) mix(t.data, std::min<size_t>(t.nbytes, 4096));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  // The model stays mapped, not copied: it is the admin's file, named in the config or on the
  // command line, never by a client. (Files a client names are copied: daemon/side_files.h.)
  auto file = GgufFile::open(path);
  if (!file) return file.error();
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  m->file_ = std::move(file.value());
  const GgufFile& f = *m->file_;
  auto cfg = read_config(f);
  if (!cfg) return cfg.error();
  ModelConfig& c = m->cfg_ = std::move(cfg.value());

  const GgufTensorInfo* embd = f.tensor("token_embd.weight");
  if (!embd || embd->n_dims != 2) return make_error(SPECD_E_BAD_MODEL, "missing tensor token_embd.weight");
  c.vocab = static_cast<int32_t>(embd->ne[1]);
  Loader l{f, c.arch};
  auto e = l.matrix("token_embd.weight", c.vocab, c.dim);
  if (!e) return e.error();
  m->tok_embd_ = *e;
  c.tied_output = f.tensor("output.weight") == nullptr;
  auto out = c.tied_output ? e : l.matrix("output.weight", c.vocab, c.dim);
  if (!out) return out.error();
  m->output_ = *out;
  auto onorm = l.vector("output_norm.weight", c.dim);
  if (!onorm) return onorm.error();
  m->output_norm_ = std::move(onorm.value());

  const ModelArch& spec = *find_model_arch(c.arch);
  if (f.tensor("rope_freqs.weight")) {
    auto rf = l.vector("rope_freqs.weight", c.rope_dims / 2);
    if (!rf) return rf.error();
    m->rope_freqs_ = std::move(rf.value());
    for (float v : m->rope_freqs_)
      if (!(v > 0.0f) || !std::isfinite(v))
        return make_error(SPECD_E_BAD_MODEL, "rope_freqs.weight: every factor must be positive and finite");
  }
  m->layers_.resize(static_cast<size_t>(c.n_layers));
  for (int32_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& L = m->layers_[static_cast<size_t>(i)];
    auto an = l.vector(p + "attn_norm.weight", c.dim);
    auto fn = l.vector(p + "ffn_norm.weight", c.dim);
    auto wq = l.matrix(p + "attn_q.weight", c.q_dim(), c.dim);
    auto wk = l.matrix(p + "attn_k.weight", c.kv_dim(), c.dim);
    auto wv = l.matrix(p + "attn_v.weight", c.kv_dim(), c.dim);
    auto wo = l.matrix(p + "attn_output.weight", c.dim, c.q_dim());
    auto wg = l.matrix(p + "ffn_gate.weight", c.ffn_dim, c.dim);
    auto wu = l.matrix(p + "ffn_up.weight", c.ffn_dim, c.dim);
    auto wd = l.matrix(p + "ffn_down.weight", c.dim, c.ffn_dim);
    // The architecture's optional tensors: an empty vector stands for "this block has none".
    using Vec = Result<std::vector<float>>;
    auto optional = [&](bool has, const std::string& name, int64_t n) -> Vec {
      return has ? l.vector(name, n) : Vec(std::vector<float>{});
    };
    auto bq = optional(spec.qkv_bias, p + "attn_q.bias", c.q_dim());
    auto bk = optional(spec.qkv_bias, p + "attn_k.bias", c.kv_dim());
    auto bv = optional(spec.qkv_bias, p + "attn_v.bias", c.kv_dim());
    auto qn = optional(spec.qk_norm, p + "attn_q_norm.weight", c.head_dim);
    auto kn = optional(spec.qk_norm, p + "attn_k_norm.weight", c.head_dim);
    const std::string errs =
        joined({an ? nullptr : &an.error(), fn ? nullptr : &fn.error(), wq ? nullptr : &wq.error(),
                wk ? nullptr : &wk.error(), wv ? nullptr : &wv.error(), wo ? nullptr : &wo.error(),
                wg ? nullptr : &wg.error(), wu ? nullptr : &wu.error(), wd ? nullptr : &wd.error(),
                bq ? nullptr : &bq.error(), bk ? nullptr : &bk.error(), bv ? nullptr : &bv.error(),
                qn ? nullptr : &qn.error(), kn ? nullptr : &kn.error()});
    if (!errs.empty()) return make_error(SPECD_E_BAD_MODEL, "%s (architecture %s)", errs.c_str(), c.arch.c_str());
    L.attn_norm = std::move(an.value());
    L.ffn_norm = std::move(fn.value());
    L.bq = std::move(bq.value()), L.bk = std::move(bk.value()), L.bv = std::move(bv.value());
    L.q_norm = std::move(qn.value()), L.k_norm = std::move(kn.value());
    L.wq = *wq, L.wk = *wk, L.wv = *wv, L.wo = *wo, L.w_gate = *wg, L.w_up = *wu, L.w_down = *wd;
  }

  auto tok = Tokenizer::from_gguf(f);
  if (!tok) return tok.error();
  m->tok_ = std::move(tok.value());
  if (m->tok_.vocab_size() > c.vocab)
    return make_error(SPECD_E_BAD_MODEL, "tokenizer has %d tokens but the embedding only %d rows",
                      m->tok_.vocab_size(), c.vocab);
  m->digest_ = model_digest(f);
  if (c.bos < 0 || c.bos >= c.vocab || c.eos < 0 || c.eos >= c.vocab || c.mask >= c.vocab)
    return make_error(SPECD_E_BAD_MODEL, "special token id out of range");
  return m;
}

std::vector<int32_t> Model::stop_tokens() const {
  std::vector<int32_t> out;
  for (int32_t id : {cfg_.eos, cfg_.bos, tok_.eot(), tok_.eom()})
    if (id >= 0 && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}

size_t Model::weight_bytes() const {
  size_t n = output_.row_bytes * static_cast<size_t>(output_.rows);
  for (const auto& L : layers_)
    for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      n += w->row_bytes * static_cast<size_t>(w->rows);
  return n;
}

}  // namespace specd::engine
