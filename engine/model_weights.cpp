// ModelWeights::upload: every matrix through Backend::upload_weight, norm vectors copied unless
// the backend reads host memory.
#include "engine/model_weights.h"

namespace specd::engine {

Result<const float*> ModelWeights::vector(const std::vector<float>& host) {
  if (host.empty()) return static_cast<const float*>(nullptr);
  if (backend_.host_memory()) return host.data();
  auto p = backend_.alloc(kernels::MemUse::Weights, host.size() * sizeof(float));
  if (!p) return p.error();
  owned_.push_back(*p);
  backend_.copy_to_device(*p, host.data(), host.size() * sizeof(float));
  return static_cast<const float*>(*p);
}

Result<std::unique_ptr<ModelWeights>> ModelWeights::upload(const Model& model, kernels::Backend& backend) {
  std::unique_ptr<ModelWeights> w(new ModelWeights(model, backend));
  auto matrix = [&](const kernels::WeightView& host, kernels::WeightView* out) -> Status {
    auto v = backend.upload_weight(host);
    if (!v) return v.error();
    *out = *v;
    if (!backend.host_memory()) w->owned_.push_back(const_cast<void*>(v->data));
    return {};
  };
  const int32_t n_layers = model.config().n_layers;
  w->layers_.resize(static_cast<size_t>(n_layers));
  for (int32_t l = 0; l < n_layers; ++l) {
    const LayerWeights& h = model.layer(l);
    LayerTensors& d = w->layers_[static_cast<size_t>(l)];
    for (auto [src, dst] : {std::pair{&h.wq, &d.wq}, {&h.wk, &d.wk}, {&h.wv, &d.wv}, {&h.wo, &d.wo},
                            {&h.w_gate, &d.w_gate}, {&h.w_up, &d.w_up}, {&h.w_down, &d.w_down}})
      SPECD_TRY(matrix(*src, dst));
    for (auto [src, dst] : {std::pair{&h.attn_norm, &d.attn_norm}, {&h.ffn_norm, &d.ffn_norm}, {&h.bq, &d.bq},
                            {&h.bk, &d.bk}, {&h.bv, &d.bv}, {&h.q_norm, &d.q_norm}, {&h.k_norm, &d.k_norm}}) {
      auto v = w->vector(*src);
      if (!v) return v.error();
      *dst = *v;
    }
  }
  SPECD_TRY(matrix(model.token_embd(), &w->token_embd_));
  SPECD_TRY(matrix(model.output(), &w->output_));
  auto on = w->vector(model.output_norm());
  if (!on) return on.error();
  w->output_norm_ = *on;
  auto rf = w->vector(model.rope_freqs());
  if (!rf) return rf.error();
  w->rope_freqs_ = *rf;
  SPECD_TRY(backend.sync());
  return w;
}

ModelWeights::~ModelWeights() {
  for (void* p : owned_) backend_.free(p);
}

}  // namespace specd::engine
