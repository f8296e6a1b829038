// Placing a model on a device: the backend named by `device` and the model's weights on it.
//
// What `specd serve` (per model), `specd generate --device` and `specd-bench --device` share.
#pragma once

#include "engine/model.h"
#include "engine/model_weights.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/result.h"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace specd::daemon {

struct PlacedModel {
  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<engine::ModelWeights> weights;  // on backend; destroyed before it
  std::string why;                                // "cuda:0 (auto: 1 CUDA device(s))", "cpu (asked)"
  PlacedModel() = default;
  PlacedModel(PlacedModel&&) = default;
  PlacedModel& operator=(PlacedModel&&) = default;
  ~PlacedModel() { weights.reset(); }
};

// Device memory a CUDA backend takes for model when the config does not say: its weights as the
// backend keeps them (Q8_0 as BF16), kv_bytes, and 512 MiB for scratch, staging and plugin buffers.
size_t device_memory_estimate(const engine::Model& model, size_t kv_bytes);

// The backend for device ("auto", "cpu", "cuda", "cuda:N"; see kernels/device.h) with model's weights
// on it. cpu_pool serves the CPU backend; device_memory 0 means device_memory_estimate(). model and
// cpu_pool must outlive the result. Errors: parse_device's and open_backend's (unknown device, no
// CUDA in the build, no such GPU), SPECD_E_NOMEM when the weights do not fit.
Result<PlacedModel> place_model(const engine::Model& model, std::string_view device, kernels::ThreadPool& cpu_pool,
                                size_t kv_bytes, size_t device_memory = 0);

}  // namespace specd::daemon
