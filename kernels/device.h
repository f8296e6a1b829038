// Device selection: "auto", "cpu", "cuda" or "cuda:N" to a Backend, saying what was chosen and why.
//
// The one place that knows which backends this build has (kernels/build_config.h). `auto` takes the
// first CUDA device when the build has the CUDA backend and a GPU is present, else the CPU.
#pragma once

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/result.h"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace specd::kernels {

struct DeviceChoice {
  enum class Kind { Auto, Cpu, Cuda };
  Kind kind = Kind::Auto;
  int index = 0;  // Cuda: the device number ("cuda" is 0)
};

// Parse a device name. Errors: SPECD_E_INVALID_ARG naming the text and the accepted forms.
Result<DeviceChoice> parse_device(std::string_view text);

struct OpenedBackend {
  std::unique_ptr<Backend> backend;
  std::string why;  // one line for logs: "cuda:0 (auto: CUDA build, 1 GPU)", "cpu (auto: built without CUDA)"
};

// A backend for choice. cpu_pool is used by the CPU backend and must outlive it; device_pool_bytes is
// the device memory a CUDA backend takes at start. Errors: SPECD_E_UNSUPPORTED when "cuda" is asked of
// a build without the CUDA backend; SPECD_E_INVALID_ARG when there is no such CUDA device (none at
// all, or N past the count); the CUDA backend's own errors (SPECD_E_NOMEM, SPECD_E_INTERNAL).
Result<OpenedBackend> open_backend(const DeviceChoice& choice, ThreadPool& cpu_pool, size_t device_pool_bytes);

// Whether this build has the CUDA backend, and how many CUDA devices it sees (0 without it).
bool built_with_cuda();
int cuda_devices();

}  // namespace specd::kernels
