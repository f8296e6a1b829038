// ModelWeights: one Model's weights as a backend reads them.
//
// The Model keeps the file, config and tokenizer; this keeps the tensors the forward needs in the
// backend's memory (MemUse::Weights). On the CPU backend the matrices are the mapped file's bytes
// and the norm vectors the Model's f32 copies (nothing is copied); a device backend copies them once.
#pragma once

#include "engine/model.h"
#include "kernels/backend.h"

#include <memory>
#include <vector>

namespace specd::engine {

struct LayerTensors {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;  // null when the architecture has none
  const float *q_norm = nullptr, *k_norm = nullptr;         // likewise
  kernels::WeightView wq, wk, wv, wo, w_gate, w_up, w_down;
};

class ModelWeights {
 public:
  // model and backend must outlive the result. Errors: SPECD_E_NOMEM (past the weights budget or
  // the device's memory).
  static Result<std::unique_ptr<ModelWeights>> upload(const Model& model, kernels::Backend& backend);
  ~ModelWeights();
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;

  const Model& model() const { return model_; }
  kernels::Backend& backend() const { return backend_; }
  const LayerTensors& layer(int32_t l) const { return layers_[static_cast<size_t>(l)]; }
  const kernels::WeightView& token_embd() const { return token_embd_; }
  const kernels::WeightView& output() const { return output_; }
  const float* output_norm() const { return output_norm_; }
  const float* rope_freqs() const { return rope_freqs_; }  // null when the model has none

 private:
  ModelWeights(const Model& model, kernels::Backend& backend) : model_(model), backend_(backend) {}
  Result<const float*> vector(const std::vector<float>& host);  // nullptr for an empty one
  const Model& model_;
  kernels::Backend& backend_;
  std::vector<LayerTensors> layers_;
  kernels::WeightView token_embd_, output_;
  const float* output_norm_ = nullptr;
  const float* rope_freqs_ = nullptr;
  std::vector<void*> owned_;  // what a device backend copied (matrices, norm vectors)
};

}  // namespace specd::engine
