// CudaBackend: kernels/backend.h on one GPU — pool, staging, one stream, recorded errors, and the
// ops' argument checks and launches. The kernels are in the .cu files, gemm in gemm_lt.cpp.
#include "kernels/cuda/cuda_backend.h"

#include "kernels/cuda/device_pool.h"
#include "kernels/cuda/gemm_lt.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pinned_arena.h"
#include "kernels/cpu/matmul.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace specd::kernels {
namespace {

using cuda::DeviceStep;
using cuda::LtGemm;
using cuda::PinnedArena;

// Copies larger than this skip staging (a pinned copy of a one-off upload would stay allocated):
// they are made from the caller's memory and waited for, so the caller may reuse it on return.
constexpr size_t kStagedCopyMax = size_t{16} << 20;

// Errors after which the CUDA context is unusable: every later call fails the same way.
bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorAssert:
    case cudaErrorContextIsDestroyed:
      return true;
    default:
      return false;
  }
}

size_t align16(size_t n) { return (n + 15) & ~size_t{15}; }

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, void* base, size_t bytes, cudaStream_t stream)
      : device_(device), name_("cuda:" + std::to_string(device)), base_(base), pool_(base, bytes, ledger_),
        stream_(stream) {}
  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
    cudaFree(base_);
  }
  Status init() {
    SPECD_TRY(gemm_.init());
    SPECD_TRY(staging_.take(1));  // the first pinned chunk: fail at creation, not in the first step
    staging_.reset();
    return {};
  }

  const char* name() const override { return name_.c_str(); }
  bool host_memory() const override { return false; }

  Result<void*> alloc(MemUse use, size_t bytes) override { return pool_.alloc(use, bytes); }
  size_t memory_capacity() const override { return pool_.stats().capacity; }
  bool device_lost() const override { return lost_; }
  void free(void* p) override {
    if (Status s = pool_.free(p); !s) fail(s.error());
  }
  MemLedger& ledger() override { return ledger_; }

  Result<WeightView> upload_weight(const WeightView& host) override;
  void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void zero(void* dst, size_t bytes) override { cuda_ok(cudaMemsetAsync(dst, 0, bytes, stream_), "zero"); }
  Status sync() override;
  Status begin_step(const StepMeta& meta) override;

  void gemm(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) override;
  void embed(const WeightView& table, const int32_t* ids, int64_t n, float* out) override;
  void rms_norm(const float* x, const float* gain, int64_t rows, int32_t n, float eps, float* out) override {
    if (!enter()) return;
    cuda::launch_rms_norm(stream_, x, gain, rows, n, eps, out);
    check_launch("rms_norm");
  }
  void rope(float* x, int64_t ld, int32_t n_heads, const RopeParams& p) override;
  void swiglu(float* gate, const float* up, int64_t n) override {
    if (!enter()) return;
    cuda::launch_swiglu(stream_, gate, up, n);
    check_launch("swiglu");
  }
  void add(float* x, const float* y, int64_t n) override {
    if (!enter()) return;
    cuda::launch_add3(stream_, x, y, x, n);
    check_launch("add");
  }
  void add_bias(float* x, const float* bias, int64_t rows, int32_t n) override {
    if (!enter()) return;
    cuda::launch_add_bias(stream_, x, bias, rows, n);
    check_launch("add_bias");
  }
  void attention(const AttentionArgs& a) override;
  void kv_commit(const KvCommitArgs& a) override;
  void silu(float* x, int64_t n) override {
    if (!enter()) return;
    cuda::launch_silu(stream_, x, n);
    check_launch("silu");
  }
  void add3(const float* a, const float* b, float* y, int64_t n) override {
    if (!enter()) return;
    cuda::launch_add3(stream_, a, b, y, n);
    check_launch("add3");
  }
  void log_softmax(float* x, int64_t rows, int32_t cols) override {
    if (!enter()) return;
    cuda::launch_log_softmax(stream_, x, rows, cols);
    check_launch("log_softmax");
  }
  void topk(const float* x, int64_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) override;

 private:
  // A device buffer that only grows (per-op scratch); reuse is safe because all work is stream-ordered.
  struct Grow {
    void* p = nullptr;
    size_t size = 0;
  };
  struct PendingCopy {
    void* dst;
    const void* src;
    size_t bytes;
  };

  // Whether ops may be enqueued (the context is not lost); makes this backend's device current.
  bool enter() {
    if (lost_) return false;
    cudaSetDevice(device_);
    return true;
  }
  // Record the first error since the last sync (a sticky one replaces it: it is the one that matters).
  void fail(Error e) {
    if (!error_) error_ = std::move(e);
  }
  void fail_invalid(const char* op, const char* why) { fail(make_error(SPECD_E_INVALID_ARG, "cuda %s: %s", op, why)); }
  // The Error for a failed CUDA call. A sticky error also marks the context lost and becomes the
  // recorded error (every later sync reports it); any other is cleared from the runtime and only returned.
  Error cuda_error(cudaError_t e, const char* what) {
    if (is_sticky(e)) {
      lost_ = true;
      error_ = make_error(SPECD_E_DEVICE, "%s: sticky CUDA error %s (%s): the device context is lost, recreate the backend",
                          what, cudaGetErrorName(e), cudaGetErrorString(e));
      return *error_;
    }
    cudaGetLastError();  // clear it, so the next check does not report it again
    return make_error(SPECD_E_DEVICE, "%s: CUDA error %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
  }
  // Check a CUDA call's result; false, and recorded for sync(), on error.
  bool cuda_ok(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    Error err = cuda_error(e, what);
    if (!lost_) fail(std::move(err));
    return false;
  }
  // After a launcher: its launch error (bad configuration, no kernel image for this GPU), if any.
  void check_launch(const char* what) { cuda_ok(cudaGetLastError(), what); }
  Result<void*> grow(Grow& g, size_t bytes);
  // Host arrays a (na bytes) and b (nb bytes) in device memory (b at align16(na)), via pinned staging.
  Result<char*> upload_args(const void* a, size_t na, const void* b, size_t nb);

  int device_;
  std::string name_;
  MemLedger ledger_;  // before pool_ and staging_, which charge it
  void* base_;
  DevicePool pool_;
  cudaStream_t stream_;
  PinnedArena staging_{ledger_};
  LtGemm gemm_;
  std::vector<PendingCopy> pending_;  // staged copies to host, done in sync()
  std::optional<Error> error_;
  bool lost_ = false;
  const StepMeta* meta_ = nullptr;  // the last begin_step's (host) metadata
  DeviceStep step_;                 // its device copy
  Grow meta_buf_, args_buf_, half_buf_, topk_buf_;
};


Result<void*> CudaBackend::grow(Grow& g, size_t bytes) {
  if (g.size >= bytes && g.p) return g.p;
  const size_t size = std::max(bytes, 2 * g.size);
  auto p = pool_.alloc(MemUse::Scratch, size);
  if (!p) return p.error();
  // The old block may still be read by queued kernels; whoever gets it next writes it from this
  // same stream, after them.
  if (g.p) (void)pool_.free(g.p);
  g.p = *p;
  g.size = size;
  return g.p;
}

Result<char*> CudaBackend::upload_args(const void* a, size_t na, const void* b, size_t nb) {
  const size_t total = align16(na) + nb;
  auto stage = staging_.take(total);
  if (!stage) return stage.error();
  auto dev = grow(args_buf_, total);
  if (!dev) return dev.error();
  char* h = static_cast<char*>(*stage);
  std::memcpy(h, a, na);
  if (nb) std::memcpy(h + align16(na), b, nb);
  if (const cudaError_t e = cudaMemcpyAsync(*dev, h, total, cudaMemcpyHostToDevice, stream_); e != cudaSuccess)
    return cuda_error(e, "argument upload");
  return static_cast<char*>(*dev);
}

Result<WeightView> CudaBackend::upload_weight(const WeightView& host) {
  if (lost_) return *error_;
  cudaSetDevice(device_);
  if (host.rows <= 0 || host.cols <= 0 || !host.data || !ggml_type_supported(static_cast<uint32_t>(host.type)) ||
      host.row_bytes < ggml_row_bytes(host.type, host.cols))
    return make_error(SPECD_E_INVALID_ARG, "cuda upload_weight: bad view (%lld x %lld %s, row_bytes %zu)",
                      static_cast<long long>(host.rows), static_cast<long long>(host.cols), ggml_type_name(host.type),
                      host.row_bytes);
  // Q8_0 becomes BF16 here: cuBLASLt has no Q8_0 input, and one conversion at load beats one per call.
  // Q4_0 and the K types too, dequantized on the host (the CPU kernels' tested dequantizer; no CUDA
  // one yet): they cost BF16's memory and bandwidth on the GPU, which is correct but not what a user
  // of a 4-bit file wants for speed.
  const bool host_dequant = ggml_type_quantized_act(host.type);
  const GgmlType type = host.type == GgmlType::Q8_0 || host_dequant ? GgmlType::BF16 : host.type;
  const size_t row_bytes = ggml_row_bytes(type, host.cols);
  const size_t rows = static_cast<size_t>(host.rows);
  auto dst = pool_.alloc(MemUse::Weights, rows * row_bytes);
  if (!dst) return dst.error();
  WeightView out{type, *dst, host.rows, host.cols, row_bytes};
  cudaError_t e;
  if (host_dequant) {
    std::vector<uint16_t> bf(rows * static_cast<size_t>(host.cols));
    std::vector<float> row(static_cast<size_t>(host.cols));
    for (int64_t r = 0; r < host.rows; ++r) {
      weight_row_to_f32(host, r, row.data());
      uint16_t* out_row = bf.data() + static_cast<size_t>(r) * static_cast<size_t>(host.cols);
      for (int64_t k = 0; k < host.cols; ++k) out_row[k] = f32_to_bf16(row[static_cast<size_t>(k)]);
    }
    e = cudaMemcpy(*dst, bf.data(), rows * row_bytes, cudaMemcpyHostToDevice);  // synchronous: bf dies here
  } else if (host.type == GgmlType::Q8_0) {
    // The quantised rows pass through scratch; it is returned at once (later users are stream-ordered).
    auto raw = pool_.alloc(MemUse::Scratch, rows * host.row_bytes);
    if (!raw) {
      (void)pool_.free(*dst);
      return raw.error();
    }
    e = cudaMemcpyAsync(*raw, host.data, rows * host.row_bytes, cudaMemcpyHostToDevice, stream_);
    if (e == cudaSuccess) {
      cuda::launch_q8_0_to_bf16(stream_, *raw, host.rows, host.cols, host.row_bytes, *dst);
      e = cudaGetLastError();
    }
    (void)pool_.free(*raw);
  } else {
    e = cudaMemcpy2DAsync(*dst, row_bytes, host.data, host.row_bytes, row_bytes, rows, cudaMemcpyHostToDevice, stream_);
  }
  if (e != cudaSuccess) {
    (void)pool_.free(*dst);
    return cuda_error(e, "upload_weight");
  }
  return out;
}

void CudaBackend::copy_to_device(void* dst, const void* host_src, size_t bytes) {
  if (!enter() || bytes == 0) return;
  if (bytes <= kStagedCopyMax) {
    if (auto stage = staging_.take(bytes)) {
      std::memcpy(*stage, host_src, bytes);
      cuda_ok(cudaMemcpyAsync(dst, *stage, bytes, cudaMemcpyHostToDevice, stream_), "copy_to_device");
      return;
    }
  }
  if (cuda_ok(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_), "copy_to_device"))
    cuda_ok(cudaStreamSynchronize(stream_), "copy_to_device");
}

void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  if (!enter() || bytes == 0) return;
  auto stage = staging_.take(bytes);
  if (!stage) return fail(stage.error());
  if (cuda_ok(cudaMemcpyAsync(*stage, src, bytes, cudaMemcpyDeviceToHost, stream_), "copy_to_host"))
    pending_.push_back({host_dst, *stage, bytes});
}

Status CudaBackend::sync() {
  if (!lost_) {
    cudaSetDevice(device_);
    cuda_ok(cudaStreamSynchronize(stream_), "sync");
  }
  // Results land only from a clean stream: after an error they would be garbage.
  if (!error_)
    for (const PendingCopy& c : pending_) std::memcpy(c.dst, c.src, c.bytes);
  pending_.clear();
  staging_.reset();
  if (!error_) return {};
  Error e = *error_;
  if (!lost_) error_.reset();  // a lost context keeps reporting itself
  return e;
}

Status CudaBackend::begin_step(const StepMeta& meta) {
  if (lost_) return *error_;
  cudaSetDevice(device_);
  const size_t nr = static_cast<size_t>(meta.n_rows);
  if (meta.pos.size() < nr || meta.row_tile.size() < nr || meta.row_local.size() < nr)
    return make_error(SPECD_E_INVALID_ARG, "cuda begin_step: %zu rows but shorter per-row arrays", nr);
  // One upload: the arrays the kernels read, each at a 16-byte boundary.
  struct Part {
    const void* src;
    size_t bytes;
  };
  const Part parts[] = {
      {meta.pos.data(), nr * sizeof(int32_t)},
      {meta.row_tile.data(), nr * sizeof(int32_t)},
      {meta.row_local.data(), nr * sizeof(int32_t)},
      {meta.tiles.data(), meta.tiles.size() * sizeof(SeqTile)},
      {meta.row_ids.data(), meta.row_ids.size() * sizeof(int32_t)},
      {meta.block_ids.data(), meta.block_ids.size() * sizeof(int32_t)},
      {meta.tile_bits.data(), meta.tile_bits.size() * sizeof(uint64_t)},
  };
  size_t total = 0;
  for (const Part& p : parts) total += align16(p.bytes);
  auto stage = staging_.take(total);
  if (!stage) return stage.error();
  auto dev = grow(meta_buf_, total);
  if (!dev) return dev.error();
  char* h = static_cast<char*>(*stage);
  char* d = static_cast<char*>(*dev);
  const void* at[7];
  size_t off = 0;
  for (size_t i = 0; i < 7; ++i) {
    if (parts[i].bytes) std::memcpy(h + off, parts[i].src, parts[i].bytes);
    at[i] = d + off;
    off += align16(parts[i].bytes);
  }
  if (const cudaError_t e = cudaMemcpyAsync(d, h, total, cudaMemcpyHostToDevice, stream_); e != cudaSuccess)
    return cuda_error(e, "begin_step");
  meta_ = &meta;
  step_ = DeviceStep{meta.n_rows,
                     static_cast<const int32_t*>(at[0]),
                     static_cast<const int32_t*>(at[1]),
                     static_cast<const int32_t*>(at[2]),
                     static_cast<const SeqTile*>(at[3]),
                     static_cast<const int32_t*>(at[4]),
                     static_cast<const int32_t*>(at[5]),
                     static_cast<const uint64_t*>(at[6])};
  return {};
}

void CudaBackend::gemm(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) {
  if (!enter() || m <= 0) return;
  if (ldx < w.cols || ldy < w.rows) return fail_invalid("gemm", "row stride shorter than the row");
  Status s;
  if (w.type == GgmlType::BF16 || w.type == GgmlType::F16) {
    // cuBLASLt multiplies like types: the activations are rounded to the weight's 16-bit type.
    auto half = grow(half_buf_, static_cast<size_t>(m) * static_cast<size_t>(w.cols) * 2);
    if (!half) return fail(half.error());
    cuda::launch_f32_to_half(stream_, x, ldx, m, w.cols, w.type, *half);
    check_launch("gemm (activation conversion)");
    s = gemm_.run(w, *half, w.cols, m, y, ldy, stream_);
  } else {
    s = gemm_.run(w, x, ldx, m, y, ldy, stream_);
  }
  if (!s) fail(s.error());
}

void CudaBackend::embed(const WeightView& table, const int32_t* ids, int64_t n, float* out) {
  if (!enter() || n <= 0) return;
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= table.rows) return fail(make_error(SPECD_E_BAD_TOKEN, "cuda embed: id %d of %lld rows",
                                                                 ids[i], static_cast<long long>(table.rows)));
  auto dev = upload_args(ids, static_cast<size_t>(n) * sizeof(int32_t), nullptr, 0);
  if (!dev) return fail(dev.error());
  cuda::launch_embed(stream_, table, reinterpret_cast<const int32_t*>(*dev), n, out);
  check_launch("embed");
}

void CudaBackend::rope(float* x, int64_t ld, int32_t n_heads, const RopeParams& p) {
  if (!enter()) return;
  if (!meta_) return fail_invalid("rope", "no begin_step yet");
  if (p.rope_dims <= 0 || p.rope_dims % 2 || p.rope_dims > p.head_dim)
    return fail_invalid("rope", "rope_dims must be even and within head_dim");
  cuda::launch_rope(stream_, x, ld, meta_->n_rows, n_heads, step_.pos, p);
  check_launch("rope");
}

void CudaBackend::attention(const AttentionArgs& a) {
  if (!enter()) return;
  if (!meta_) return fail_invalid("attention", "no begin_step yet");
  if (a.head_dim <= 0 || a.head_dim > 512 || a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0)
    return fail_invalid("attention", "head_dim must be 1..512 and n_heads a multiple of n_kv_heads");
  if (a.layout.kv_dim != a.n_kv_heads * a.head_dim || a.layer < 0 || a.layer >= a.layout.n_layers)
    return fail_invalid("attention", "KV layout does not match the heads or the layer");
  cuda::launch_attention(stream_, a, step_);
  check_launch("attention");
}

void CudaBackend::kv_commit(const KvCommitArgs& a) {
  if (!enter() || a.n <= 0) return;
  const size_t bytes = static_cast<size_t>(a.n) * sizeof(int32_t);
  auto dev = upload_args(a.rows, bytes, a.slots, bytes);
  if (!dev) return fail(dev.error());
  KvCommitArgs d = a;
  d.rows = reinterpret_cast<const int32_t*>(*dev);
  d.slots = reinterpret_cast<const int32_t*>(*dev + align16(bytes));
  cuda::launch_kv_commit(stream_, d);
  check_launch("kv_commit");
}

void CudaBackend::topk(const float* x, int64_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) {
  if (!enter() || rows <= 0) return;
  if (k <= 0 || k > cols) return fail_invalid("topk", "k must be 1..cols");
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(k);
  auto dev = grow(topk_buf_, n * (sizeof(int32_t) + sizeof(float)));
  if (!dev) return fail(dev.error());
  int32_t* d_ids = static_cast<int32_t*>(*dev);
  float* d_vals = reinterpret_cast<float*>(d_ids + n);
  cuda::launch_topk(stream_, x, rows, cols, k, d_ids, d_vals);
  check_launch("topk");
  copy_to_host(ids, d_ids, n * sizeof(int32_t));
  copy_to_host(vals, d_vals, n * sizeof(float));
}

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error for a probe
    return 0;
  }
  return n;
}

Result<std::unique_ptr<Backend>> make_cuda_backend(int device, size_t pool_bytes) {
  const int count = cuda_device_count();
  if (device < 0 || device >= count)
    return make_error(SPECD_E_INVALID_ARG, "cuda device %d: %d device(s) available", device, count);
  if (pool_bytes == 0) return make_error(SPECD_E_INVALID_ARG, "cuda device %d: a pool of 0 bytes", device);
  cudaError_t e = cudaSetDevice(device);
  cudaStream_t stream = nullptr;
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return make_error(SPECD_E_DEVICE, "cuda device %d: %s", device, cudaGetErrorString(e));
  }
  void* base = nullptr;
  e = cudaMalloc(&base, pool_bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    cudaStreamDestroy(stream);
    return make_error(e == cudaErrorMemoryAllocation ? SPECD_E_NOMEM : SPECD_E_DEVICE,
                      "cuda device %d: pool of %zu bytes: %s", device, pool_bytes, cudaGetErrorString(e));
  }
  auto b = std::make_unique<CudaBackend>(device, base, pool_bytes, stream);  // owns base and stream from here
  SPECD_TRY(b->init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace specd::kernels
