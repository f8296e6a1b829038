// matmul dispatch: picks the ISA path once, splits N across the thread pool, owns per-thread scratch.
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/matmul_kquant.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace specd::kernels {
namespace {

// Below this many multiply-adds the calling thread works alone: a hand-off to a spinning worker
// costs about a microsecond, which is what ~30-60K MACs take on one core. It also keeps every
// stories260K decode matmul (the largest, its 512x64 output head, is 32K MACs) off the workers.
constexpr int64_t kMinParallelMacs = 65536;
// Thread chunks start on multiples of this (the AMX tile height, a multiple of every NB).
constexpr int64_t kChunkAlign = 16;

std::atomic<int> g_isa{-1};

bool parse_isa(const char* s, Isa* out) {
  static const struct { const char* name; Isa isa; } kNames[] = {
      {"scalar", Isa::Scalar}, {"avx2", Isa::Avx2}, {"avx512", Isa::Avx512},
      {"avx512bf16", Isa::Avx512Bf16}, {"amx", Isa::Amx}};
  for (const auto& n : kNames) {
    if (std::strcmp(s, n.name) == 0) {
      *out = n.isa;
      return true;
    }
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::Amx)) return Isa::Amx;
  if (isa_supported(Isa::Avx512Bf16)) return Isa::Avx512Bf16;
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

// The best supported path no better than `want` (AMX -> AVX512-BF16 -> AVX-512 -> AVX2 -> scalar).
Isa clamp_isa(Isa want) {
  for (int i = static_cast<int>(want); i > 0; --i) {
    if (isa_supported(static_cast<Isa>(i))) return static_cast<Isa>(i);
  }
  return Isa::Scalar;
}

Isa choose_isa() {
  Isa want = best_isa();
  const char* env = std::getenv("SPECD_ISA");
  const Isa got = env != nullptr && parse_isa(env, &want) ? clamp_isa(want) : best_isa();
  // Programs refuse a bad SPECD_ISA at start (cli/cli_args.cpp); a library user gets the line.
  if (const Status st = isa_env_status(); !st)
    std::fprintf(stderr, "specd: %s; using %s\n", st.error().message.c_str(), isa_name(got));
  return got;
}

}  // namespace

Status isa_env_status() {
  const char* env = std::getenv("SPECD_ISA");
  if (env == nullptr || *env == '\0') return {};
  Isa want;
  if (!parse_isa(env, &want))
    return make_error(SPECD_E_INVALID_ARG, "SPECD_ISA=%s is not one of scalar|avx2|avx512|avx512bf16|amx (unset: the best this CPU has, %s)",
                      env, isa_name(best_isa()));
  if (!isa_supported(want)) {
    std::string here;
    for (int i = static_cast<int>(Isa::Amx); i >= 0; --i)
      if (isa_supported(static_cast<Isa>(i))) here.append(here.empty() ? "" : "|").append(isa_name(static_cast<Isa>(i)));
    return make_error(SPECD_E_UNSUPPORTED, "SPECD_ISA=%s is not supported by this CPU%s (supported here: %s)", env,
                      want == Isa::Amx ? " or not permitted by its kernel" : "", here.c_str());
  }
  return {};
}

namespace {

// Q4_0 and the K types have their own kernels (matmul_kquant.h); their AVX-512 one needs VNNI, and
// without it the AVX2 one serves every AVX-512 path.
RangeFn kquant_range_fn(Isa isa) {
  if (isa >= Isa::Avx512 && cpu_features().avx512_vnni) return matmul_range_kq_avx512;
  if (isa >= Isa::Avx2) return matmul_range_kq_avx2;
  return matmul_range_kq_scalar;
}

RangeFn range_fn(Isa isa, GgmlType type) {
  if (ggml_type_quantized_act(type)) return kquant_range_fn(isa);
  switch (isa) {
    case Isa::Amx:
      return bf16_types_supported(type) ? matmul_range_amx : matmul_range_avx512;
    case Isa::Avx512Bf16:
      return bf16_types_supported(type) ? matmul_range_avx512_bf16 : matmul_range_avx512;
    case Isa::Avx512:
      return matmul_range_avx512;
    case Isa::Avx2:
      return matmul_range_avx2;
    default:
      return matmul_range_scalar;
  }
}

}  // namespace

bool bf16_types_supported(GgmlType type) { return type == GgmlType::BF16 || type == GgmlType::F16; }

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
      return f.avx2;
    case Isa::Avx512:
      return f.avx512;
    case Isa::Avx512Bf16:
      return f.avx512_bf16;
    case Isa::Amx:
      return f.amx_bf16 && amx_permission();
  }
  return false;
}

Isa active_isa() {
  int v = g_isa.load(std::memory_order_acquire);
  if (v < 0) {
    int expected = -1;
    g_isa.compare_exchange_strong(expected, static_cast<int>(choose_isa()), std::memory_order_acq_rel);
    v = g_isa.load(std::memory_order_acquire);
  }
  return static_cast<Isa>(v);
}

bool set_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  g_isa.store(static_cast<int>(isa), std::memory_order_release);
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx512Bf16:
      return "avx512bf16";
    case Isa::Amx:
      return "amx";
  }
  return "unknown";
}

void matmul_range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                  int64_t n_begin, int64_t n_end) {
  if (m <= 0 || n_end <= n_begin) return;
  range_fn(active_isa(), w.type)(w, x, ldx, m, y, ldy, n_begin, n_end);
}

void matmul(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
            ThreadPool& pool) {
  const int64_t n = w.rows;
  if (m <= 0 || n <= 0) return;
  const RangeFn fn = range_fn(active_isa(), w.type);
  reserve_thread_scratch();
  const int64_t blocks = (n + kChunkAlign - 1) / kChunkAlign;
  int64_t tasks = pool.size() < blocks ? pool.size() : blocks;
  if (m * n * w.cols < kMinParallelMacs) tasks = 1;
  if (tasks <= 1) {
    fn(w, x, ldx, m, y, ldy, 0, n);
    return;
  }
  // Contiguous chunks of whole 16-row blocks, one per thread: each thread streams its own part of W.
  auto task = [&](int64_t t, int) {
    const int64_t b0 = blocks * t / tasks, b1 = blocks * (t + 1) / tasks;
    const int64_t n0 = b0 * kChunkAlign, n1 = b1 * kChunkAlign < n ? b1 * kChunkAlign : n;
    if (n0 < n1) fn(w, x, ldx, m, y, ldy, n0, n1);
  };
  pool.run(tasks, task);
}

void reserve_thread_scratch() { thread_scratch(kScratchReserve); }

uint8_t* thread_scratch(size_t bytes) {
  struct Scratch {
    std::unique_ptr<uint8_t[]> raw;
    uint8_t* aligned = nullptr;
    size_t cap = 0;
  };
  thread_local Scratch s;
  if (bytes > s.cap) {
    s.raw = std::make_unique_for_overwrite<uint8_t[]>(bytes + 64);
    const auto p = reinterpret_cast<uintptr_t>(s.raw.get());
    s.aligned = reinterpret_cast<uint8_t*>((p + 63) & ~static_cast<uintptr_t>(63));
    s.cap = bytes;
  }
  return s.aligned;
}

}  // namespace specd::kernels
