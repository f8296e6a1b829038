// open_backend: the only code that chooses between the CPU and CUDA backends.
#include "kernels/device.h"

#include "kernels/build_config.h"
#include "kernels/cpu/cpu_backend.h"
#if SPECD_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif


namespace specd::kernels {

bool built_with_cuda() { return SPECD_HAVE_CUDA != 0; }

int cuda_devices() {
#if SPECD_HAVE_CUDA
  return cuda_device_count();
#else
  return 0;
#endif
}

Result<OpenedBackend> open_backend(const DeviceChoice& choice, ThreadPool& cpu_pool, size_t device_pool_bytes) {
  const int gpus = cuda_devices();
  auto cpu = [&](std::string why) { return OpenedBackend{make_cpu_backend(cpu_pool), std::move(why)}; };
  if (choice.kind == DeviceChoice::Kind::Cpu) return cpu("cpu (asked)");
  if (choice.kind == DeviceChoice::Kind::Auto) {
    if (!built_with_cuda()) return cpu("cpu (auto: this build has no CUDA backend)");
    if (gpus == 0) return cpu("cpu (auto: no CUDA device found)");
  }
  if (!built_with_cuda())
    return make_error(SPECD_E_UNSUPPORTED, "device cuda:%d asked, but this build has no CUDA backend (built without nvcc)",
                      choice.index);
  if (choice.index >= gpus)
    return make_error(SPECD_E_INVALID_ARG, "device cuda:%d asked, but %d CUDA device(s) are present", choice.index, gpus);
#if SPECD_HAVE_CUDA
  auto b = make_cuda_backend(choice.index, device_pool_bytes);
  if (!b) return b.error();
  std::string why = (*b)->name();
  why.append(choice.kind == DeviceChoice::Kind::Auto ? " (auto: " : " (asked; ").append(std::to_string(gpus));
  why.append(" CUDA device(s))");
  return OpenedBackend{std::move(*b), std::move(why)};
#else
  (void)device_pool_bytes;
  return make_error(SPECD_E_UNSUPPORTED, "no CUDA backend in this build");
#endif
}

}  // namespace specd::kernels
