// Model: a LLaMA-family transformer read from GGUF — hyper-parameters, weight views, tokenizer.
//
// Architectures: engine/model_arch.h (llama incl. Llama 3.x rope_freqs, qwen2, qwen3). Weights stay
// in the mapped file in their stored type (F32/F16/BF16/Q8_0); only the small vectors (norm gains,
// biases, rope_freqs) are copied to f32. The GgufFile is owned here, so views live as long as the Model.
#pragma once

#include "engine/gguf_reader.h"
#include "kernels/result.h"
#include "engine/tokenizer.h"
#include "kernels/backend.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace specd::engine {

using kernels::RopeLayout;

struct ModelConfig {
  std::string arch;            // general.architecture ("llama", "qwen2", "qwen3")
  int32_t dim = 0;             // embedding length
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;        // dim / n_heads unless attention.key_length says otherwise
  int32_t ffn_dim = 0;
  int32_t vocab = 0;
  int32_t ctx_len = 0;
  int32_t rope_dims = 0;       // rope.dimension_count (≤ head_dim)
  float rope_theta = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for "linear" scaling, else 1
  float rms_eps = 1e-5f;
  RopeLayout rope = RopeLayout::Adjacent;
  bool tied_output = false;    // no output.weight: the head reuses token_embd
  int32_t bos = 1, eos = 2;
  int32_t mask = -1;           // specd.mask_token_id (dLLM / TiDAR models), -1 if none
  int32_t logit_shift = 0;     // specd.dllm.logit_shift
  int32_t kv_dim() const { return n_kv_heads * head_dim; }
  int32_t q_dim() const { return n_heads * head_dim; }
  // Without the rope_freqs factors: they live in the backend's memory (ModelWeights::rope_freqs).
  kernels::RopeParams rope_params() const { return {rope, head_dim, rope_dims, rope_theta, rope_freq_scale, nullptr}; }
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;  // f32 copies
  std::vector<float> bq, bk, bv;           // Q/K/V biases (qwen2), empty when the architecture has none
  std::vector<float> q_norm, k_norm;       // per-head RMSNorm gains, head_dim long (qwen3), else empty
  kernels::WeightView wq, wk, wv, wo, w_gate, w_up, w_down;
};

// The digest Model::digest() reports, of any GGUF file (tools record it for the models they write).
std::string model_digest(const GgufFile& f);

class Model {
 public:
  // Load and validate: every tensor present with the shape the metadata implies.
  // Errors: SPECD_E_IO, SPECD_E_BAD_MODEL (named: "missing metadata qwen2.block_count, ...",
  // "missing tensors blk.3.attn_q.weight, blk.3.attn_q.bias", "shape mismatch ..."), SPECD_E_UNSUPPORTED
  // (architecture, RoPE scaling type or tensor type, named with what is supported).
  static Result<std::unique_ptr<Model>> load(const std::string& path);

  const ModelConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const { return tok_; }
  const GgufFile& file() const { return *file_; }
  const std::string& path() const { return path_; }
  const LayerWeights& layer(int i) const { return layers_[static_cast<size_t>(i)]; }
  const kernels::WeightView& token_embd() const { return tok_embd_; }
  const kernels::WeightView& output() const { return output_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  // rope_freqs.weight (Llama 3.1/3.2): rope_dims/2 divisors of the RoPE frequencies; empty if absent.
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }
  // A plain prompt as llama.cpp's llama_tokenize(add_special = true, parse_special = false) encodes
  // it: BOS and EOS only where the vocabulary's add_bos_token / add_eos_token ask for them; with
  // parse_special, special tokens written in the text (a rendered chat template's markers) are tokens.
  std::vector<int32_t> encode_prompt(std::string_view text, bool parse_special = false) const {
    return tok_.tokenize(text, true, parse_special);
  }
  // The ids that end a generation: EOS, BOS (llama2.c-style models start a new document with it),
  // and the vocabulary's end-of-turn / end-of-message ids where it has them (Llama 3's <|eot_id|>
  // and <|eom_id|>, Qwen's <|im_end|>). Distinct ids, EOS first.
  std::vector<int32_t> stop_tokens() const;
  // FNV-1a-64 (hex) over the file's metadata and tensor-info bytes and the first 4 KiB of every
  // tensor: cheap at load, and it changes whenever the weights or their layout do. Drafters and
  // other sidecars record it to refuse being paired with the wrong model.
  const std::string& digest() const { return digest_; }
  // Bytes of weights one forward reads (all matrices + the head): for bandwidth figures.
  size_t weight_bytes() const;

 private:
  Model() = default;
  std::string path_;
  std::unique_ptr<GgufFile> file_;
  ModelConfig cfg_;
  Tokenizer tok_;
  std::vector<LayerWeights> layers_;
  kernels::WeightView tok_embd_, output_;
  std::vector<float> output_norm_, rope_freqs_;
  std::string digest_;
};

}  // namespace specd::engine
