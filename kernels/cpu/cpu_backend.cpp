// CpuBackend: the Backend interface over host memory, the SIMD kernels and the thread pool.
#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/row_ops.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>
#include <sys/mman.h>
#include <unordered_map>
#include <vector>

namespace specd::kernels {
namespace {

constexpr std::align_val_t kAlign{64};

// The KV cache is mapped straight from the kernel: its pages are zero and cost nothing until a
// block is first written, so a large cache neither delays start-up nor the first request, and no
// allocator (or MALLOC_PERTURB_) fills it on one thread. Page-aligned, so kAlign holds.
void* map_pages(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(ThreadPool& pool) : pool_(pool) {}
  ~CpuBackend() override {
    for (auto& [p, a] : live_) release(p, a);
  }

  const char* name() const override { return "cpu"; }
  bool host_memory() const override { return true; }

  Result<void*> alloc(MemUse use, size_t bytes) override {
    SPECD_TRY(ledger_.charge(use, bytes));
    const bool mapped = use == MemUse::Kv && bytes > 0;
    void* p = mapped ? map_pages(bytes) : ::operator new(std::max<size_t>(bytes, 1), kAlign, std::nothrow);
    if (!p) {
      ledger_.release(use, bytes);
      return make_error(SPECD_E_NOMEM, "cannot allocate %zu bytes of host memory for %s", bytes, mem_use_name(use));
    }
    try {
      live_.emplace(p, Allocation{use, bytes, mapped});
    } catch (const std::bad_alloc&) {
      release(p, Allocation{use, bytes, mapped});
      ledger_.release(use, bytes);
      return make_error(SPECD_E_NOMEM, "cannot record an allocation of %zu bytes", bytes);
    }
    return p;
  }

  void free(void* p) override {
    auto it = live_.find(p);
    if (it == live_.end()) return;
    ledger_.release(it->second.use, it->second.bytes);
    release(p, it->second);
    live_.erase(it);
  }

  MemLedger& ledger() override { return ledger_; }
  Result<WeightView> upload_weight(const WeightView& host) override { return host; }

  void copy_to_device(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* dst, size_t bytes) override { std::memset(dst, 0, bytes); }
  Status sync() override { return {}; }

  Status begin_step(const StepMeta& meta) override {
    step_ = &meta;
    int32_t widest = 0;
    for (const SeqTile& t : meta.tiles) widest = std::max(widest, t.n_rows);
    step_span_ = static_cast<int64_t>(meta.max_kv_len) + widest;
    // Sized for the longest prefix the model allows, so growing sequences do not reallocate.
    score_stride_ = static_cast<size_t>(std::max(meta.max_kv_len, meta.kv_capacity)) + static_cast<size_t>(widest);
    return {};
  }

  void gemm(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) override {
    matmul(w, x, ldx, m, y, ldy, pool_);
  }

  void embed(const WeightView& table, const int32_t* ids, int64_t n, float* out) override {
    for (int64_t i = 0; i < n; ++i) weight_row_to_f32(table, ids[i], out + i * table.cols);
  }

  void rms_norm(const float* x, const float* gain, int64_t rows, int32_t n, float eps, float* out) override {
    for (int64_t r = 0; r < rows; ++r) kernels::rms_norm(x + r * n, gain, n, eps, out + r * n);
  }

  void rope(float* x, int64_t ld, int32_t n_heads, const RopeParams& p) override {
    if (!rope_ || !(rope_->params() == p)) rope_.emplace(p);  // a model's params never change
    for (int32_t r = 0; r < step_->n_rows; ++r) rope_->apply(x + r * ld, n_heads, step_->pos[static_cast<size_t>(r)]);
  }

  void swiglu(float* gate, const float* up, int64_t n) override { silu_mul(gate, up, n); }
  void add(float* x, const float* y, int64_t n) override { add_into(x, y, n); }
  void add_bias(float* x, const float* bias, int64_t rows, int32_t n) override {
    for (int64_t r = 0; r < rows; ++r) add_into(x + r * n, bias, n);
  }

  void attention(const AttentionArgs& a) override {
    const StepMeta& m = *step_;
    const size_t stride = score_stride_ * static_cast<size_t>(std::min(a.n_heads / a.n_kv_heads, kHeadsPerPass));
    const size_t need = static_cast<size_t>(pool_.size()) * stride;
    if (scores_.size() < need) scores_.resize(need);  // grow-only: steady-state steps never allocate
    auto task = [&](int64_t t, int worker) {
      attend_group(a, m, static_cast<int32_t>(t / a.n_kv_heads), static_cast<int32_t>(t % a.n_kv_heads),
                   scores_.data() + static_cast<size_t>(worker) * stride);
    };
    // Attention is small next to the weight products unless many rows see long prefixes.
    const int64_t tasks = static_cast<int64_t>(m.n_rows) * a.n_kv_heads;
    const int64_t work = static_cast<int64_t>(m.n_rows) * a.n_heads * step_span_ * a.head_dim;
    if (work < (1 << 16) || pool_.size() == 1) {
      for (int64_t t = 0; t < tasks; ++t) task(t, 0);
    } else {
      pool_.run(tasks, task);
    }
  }

  void kv_commit(const KvCommitArgs& a) override {
    const KvLayout& L = a.layout;
    const size_t kvd = static_cast<size_t>(L.kv_dim);
    for (int32_t t = 0; t < a.n; ++t) {
      const int32_t block = a.slots[t] / L.block_tokens, within = a.slots[t] % L.block_tokens;
      for (int32_t l = 0; l < L.n_layers; ++l) {
        const size_t src = (static_cast<size_t>(l) * static_cast<size_t>(a.row_stride) + static_cast<size_t>(a.rows[t])) * kvd;
        std::memcpy(a.kv + L.offset(block, l, 0, within), a.k + src, kvd * sizeof(float));
        std::memcpy(a.kv + L.offset(block, l, 1, within), a.v + src, kvd * sizeof(float));
      }
    }
  }

  void silu(float* x, int64_t n) override { silu_inplace(x, n); }
  void add3(const float* a, const float* b, float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
  void log_softmax(float* x, int64_t rows, int32_t cols) override {
    for (int64_t r = 0; r < rows; ++r) log_softmax_row(x + r * cols, cols);
  }
  void topk(const float* x, int64_t rows, int32_t cols, int32_t k, int32_t* ids, float* vals) override {
    for (int64_t r = 0; r < rows; ++r) topk_row(x + r * cols, cols, k, ids + r * k, vals + r * k);
  }

 private:
  struct Allocation {
    MemUse use;
    size_t bytes;
    bool mapped;  // from map_pages
  };
  static void release(void* p, const Allocation& a) {
    if (a.mapped) ::munmap(p, a.bytes);
    else ::operator delete(p, kAlign);
  }
  ThreadPool& pool_;
  MemLedger ledger_;
  std::unordered_map<void*, Allocation> live_;
  const StepMeta* step_ = nullptr;
  std::optional<Rope> rope_;
  std::vector<float> scores_;  // [workers][heads a pass][score_stride_] attention scores
  size_t score_stride_ = 0;
  int64_t step_span_ = 0;  // most positions one row of this step attends to
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool) { return std::make_unique<CpuBackend>(pool); }

}  // namespace specd::kernels
