// place_model: parse the device, open its backend, upload the weights.
#include "daemon/model_placement.h"

#include "kernels/device.h"

namespace specd::daemon {
namespace {

size_t kept_bytes(const kernels::WeightView& w) {
  // A device backend keeps Q8_0, Q4_0 and the K types as BF16 (kernels/cuda/cuda_backend.cpp); other types as stored.
  if (w.type == GgmlType::Q8_0 || ggml_type_quantized_act(w.type)) return static_cast<size_t>(w.rows) * static_cast<size_t>(w.cols) * 2;
  return static_cast<size_t>(w.rows) * w.row_bytes;
}

}  // namespace

size_t device_memory_estimate(const engine::Model& model, size_t kv_bytes) {
  const engine::ModelConfig& c = model.config();
  size_t bytes = kept_bytes(model.token_embd()) + kept_bytes(model.output());
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const engine::LayerWeights& L = model.layer(l);
    for (const kernels::WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) bytes += kept_bytes(*w);
    bytes += (L.attn_norm.size() + L.ffn_norm.size()) * sizeof(float);
  }
  return bytes + kv_bytes + (size_t{512} << 20);
}

Result<PlacedModel> place_model(const engine::Model& model, std::string_view device, kernels::ThreadPool& cpu_pool,
                                size_t kv_bytes, size_t device_memory) {
  auto choice = kernels::parse_device(device);
  if (!choice) return choice.error();
  const size_t pool_bytes = device_memory ? device_memory : device_memory_estimate(model, kv_bytes);
  auto opened = kernels::open_backend(*choice, cpu_pool, pool_bytes);
  if (!opened) return opened.error();
  PlacedModel p;
  p.backend = std::move(opened->backend);
  p.why = std::move(opened->why);
  auto w = engine::ModelWeights::upload(model, *p.backend);
  if (!w) return w.error();
  p.weights = std::move(*w);
  return p;
}

}  // namespace specd::daemon
