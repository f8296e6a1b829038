// Backend: where the forward's memory lives and its ops run — an interface plus an opaque context.
//
// Modelled on ggml-backend: the engine above holds a Backend& and never knows which device is
// behind it; each implementation's state is private to its .cpp (kernels/cpu/cpu_backend.cpp, and
// kernels/cuda/ when built). What every implementation promises:
// - Memory is allocated by use (MemUse) and counted in the backend's MemLedger, so budgets fail
//   with a named SPECD_E_NOMEM at allocation time. Pointers an op takes are this backend's memory
//   (host memory for the CPU backend; host_memory() says so, and then callers read results in place).
// - Ops and copies are enqueued in order and may complete later. sync() is the wait point: after
//   it every enqueued op has finished and every copy_to_host has landed, and a device error from
//   any of them is returned there (the CPU backend runs each op when called; its sync() is free).
// - begin_step() hands over the call's StepMeta; the ops that read rows' positions, tiles or block
//   tables (rope, attention) read the last one handed over, so it is uploaded once per call.
// - Batch invariance: an op computes each row's result to the same bits whatever other rows the
//   call has and however many (fixed reduction orders, no split chosen by row count). Lossless
//   speculative decoding rests on it; tests/test_backend_ops.cpp checks it on every backend.
#pragma once

#include "kernels/kv_layout.h"
#include "kernels/mem_ledger.h"
#include "kernels/mem_use.h"
#include "kernels/result.h"
#include "kernels/step_meta.h"
#include "kernels/weight_view.h"

#include <cstddef>
#include <cstdint>

namespace specd::kernels {

enum class RopeLayout : uint8_t { Adjacent, Neox };  // llama.cpp NORM (pairs 2i, 2i+1) vs NEOX (i, i + d/2)

struct RopeParams {
  RopeLayout layout = RopeLayout::Adjacent;
  int32_t head_dim = 0;
  int32_t rope_dims = 0;  // rotated dims of each head (≤ head_dim, even)
  float theta = 10000.0f;
  // llama.cpp's frequency scaling: pair i turns at pos · freq_scale · theta^(-2i/rope_dims) /
  // freq_factors[i]. freq_scale is 1 / rope.scaling.factor of "linear" scaling; freq_factors is the
  // model's rope_freqs tensor (Llama 3.1/3.2), rope_dims/2 floats in this backend's memory, or null.
  float freq_scale = 1.0f;
  const float* freq_factors = nullptr;
  bool operator==(const RopeParams&) const = default;
};

// Attention of the step's rows for one layer: each row sees its sequence's committed KV (through the
// tile's block table) plus the in-call rows its tile row names, softmax(q·kᵀ/√head_dim)·v.
struct AttentionArgs {
  int32_t layer = 0;
  int32_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const float* q = nullptr;   // [rows][n_heads * head_dim], rotated
  const float* k = nullptr;   // [rows][n_kv_heads * head_dim] this call's keys, rotated
  const float* v = nullptr;   // [rows][n_kv_heads * head_dim]
  float* out = nullptr;       // [rows][n_heads * head_dim]
  const float* kv = nullptr;  // the KV storage (MemUse::Kv) laid out as `layout`
  KvLayout layout;
};

// Copy n rows' K and V of every layer from the call's scratch into KV slots.
struct KvCommitArgs {
  const float* k = nullptr;        // [layers][row_stride][kv_dim]
  const float* v = nullptr;        // same shape
  int64_t row_stride = 0;          // rows per layer plane of k and v
  const int32_t* rows = nullptr;   // host array: source row of each committed position
  const int32_t* slots = nullptr;  // host array: destination block * block_tokens + position within it
  int32_t n = 0;
  float* kv = nullptr;             // the KV storage
  KvLayout layout;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // --- identity ---
  virtual const char* name() const = 0;  // "cpu", "cuda:0"
  // Whether this backend's memory is host memory (then results are read in place, no copy back).
  virtual bool host_memory() const = 0;

  // --- memory ---
  // bytes of uninitialised memory for use, aligned to 64 bytes. Errors: SPECD_E_NOMEM past the
  // use's budget (see ledger()) or when the device has no more.
  virtual Result<void*> alloc(MemUse use, size_t bytes) = 0;
  // Give back p from this backend's alloc (nullptr is ignored); its bytes leave the ledger.
  virtual void free(void* p) = 0;
  virtual MemLedger& ledger() = 0;
  // Bytes of device memory this backend manages (its pool), or 0 when it allocates host memory as
  // it goes (the CPU backend).
  virtual size_t memory_capacity() const { return 0; }
  // A host weight matrix (e.g. in the mapped model file) as this backend reads it, counted as
  // MemUse::Weights. The CPU backend reads the host memory in place (no copy, no charge; the host
  // view must outlive the returned one); a device backend copies it, possibly into another type
  // (CUDA keeps Q8_0 as BF16: use the returned view, never the host's type or row_bytes), and
  // free(view.data) gives the copy back. Errors: SPECD_E_NOMEM.
  virtual Result<WeightView> upload_weight(const WeightView& host) = 0;

  // --- copies and the wait point (enqueued in order; host_src may be reused when the call returns) ---
  virtual void copy_to_device(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  // bytes of this backend's memory at dst become zero.
  virtual void zero(void* dst, size_t bytes) = 0;
  // Wait until everything enqueued has finished. Errors: the first device error since the last sync.
  virtual Status sync() = 0;
  // Whether the device is gone for good (a sticky CUDA error): every later sync() fails and the
  // backend must be destroyed. The CPU backend never is. A daemon exits non-zero on it (systemd restarts).
  virtual bool device_lost() const { return false; }

  // --- per-call metadata ---
  // The StepMeta rope() and attention() read until the next begin_step; meta must stay unchanged
  // and alive until then. Errors: SPECD_E_NOMEM when a device copy of it cannot be had.
  virtual Status begin_step(const StepMeta& meta) = 0;

  // --- the forward's ops ---
  // y[i][n] = Σ_k x[i][k] · w[n][k], i < m; ldx and ldy are row strides in floats.
  virtual void gemm(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) = 0;
  // out[i] = row ids[i] of table as f32, i < n; ids is a host array of in-range ids.
  virtual void embed(const WeightView& table, const int32_t* ids, int64_t n, float* out) = 0;
  // out[r] = x[r] / sqrt(mean(x[r]²) + eps) ⊙ gain for rows rows of n floats (out may be x).
  virtual void rms_norm(const float* x, const float* gain, int64_t rows, int32_t n, float eps, float* out) = 0;
  // Rotate n_heads heads of each step row r of x (row stride ld floats) at the step's pos[r].
  virtual void rope(float* x, int64_t ld, int32_t n_heads, const RopeParams& p) = 0;
  // gate[i] = silu(gate[i]) · up[i], i < n.
  virtual void swiglu(float* gate, const float* up, int64_t n) = 0;
  // x[i] += y[i], i < n.
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // x[r][i] += bias[i] for rows rows of n floats (Qwen2's Q/K/V biases).
  virtual void add_bias(float* x, const float* bias, int64_t rows, int32_t n) = 0;
  virtual void attention(const AttentionArgs& a) = 0;
  virtual void kv_commit(const KvCommitArgs& a) = 0;

  // --- the plugin ABI's tensor ops (abi/specd/decoder.h) ---
  // x[i] = silu(x[i]), i < n.
  virtual void silu(float* x, int64_t n) = 0;
  // y[i] = a[i] + b[i], i < n (y may alias a or b).
  virtual void add3(const float* a, const float* b, float* y, int64_t n) = 0;
  // Each of rows rows of cols floats becomes its log-softmax, in place.
  virtual void log_softmax(float* x, int64_t rows, int32_t cols) = 0;
  // Per row the k largest values, descending, lowest index first on ties, into host arrays
  // ids[rows][k] and vals[rows][k] (filled when the next sync() returns).
  virtual void topk(const float* x, int64_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) = 0;
};

}  // namespace specd::kernels
