// test_device, test_device_unavailable, test_weights: the suites' device, from SPECD_TEST_DEVICE.
#include "tests/test_device.h"

#include "daemon/model_placement.h"
#include "kernels/device.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <memory>

namespace specd::test {

std::string test_device() {
  const char* d = std::getenv("SPECD_TEST_DEVICE");
  return d && *d ? d : "cpu";
}

std::string test_device_unavailable() {
  auto choice = kernels::parse_device(test_device());
  if (!choice) return choice.error().message;
  if (choice->kind != kernels::DeviceChoice::Kind::Cuda) return "";
  if (!kernels::built_with_cuda()) return "built without CUDA";
  if (kernels::cuda_devices() <= choice->index) return "no GPU";
  return "";
}

const engine::ModelWeights* test_weights(const engine::Model& model) {
  if (test_device() == "cpu") return nullptr;
  static kernels::ThreadPool pool(2);
  static std::map<const engine::Model*, daemon::PlacedModel> placed;
  auto it = placed.find(&model);
  if (it == placed.end()) {
    // Room for a few fixtures' KV caches at once (each asks for the default 1 GiB cap or less).
    auto p = daemon::place_model(model, test_device(), pool, size_t{4} << 30);
    REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message));
    it = placed.emplace(&model, std::move(*p)).first;
  }
  return it->second.weights.get();
}

}  // namespace specd::test
