// kernel-bench: matmul over a 1B-shape weight set (22 TinyLlama layers) for m rows, one JSON line each.
//
// The weight set is 154 matrices (q, k, v, o, gate, up, down per layer; 968.9 M parameters, 1.94 GB
// in F16/BF16), far larger than any cache, so m = 1 measures how close the kernel streams to DRAM
// bandwidth and L(m)/L(1) is the verify-cost curve of CPU-KERNELS.md. A "stream" line times a plain
// read of the same bytes split the same way, as the bandwidth reference. Each figure is the median
// of --runs calls after 2 warm-up calls; a call computes all 154 matrices. Calls during which other
// processes used more than a quarter core are retried; "quiet":false marks a figure that never got
// --runs quiet calls. --clock cpu times each call by this process's CPU time instead (and counts every
// call): with --threads 1 it is the kernel's own time, much less disturbed by other jobs on a shared
// machine than the wall clock (caches and memory bandwidth are still shared).
//
// Usage: kernel-bench [--types f16,bf16,f32,q8_0,q4_0,q4_k,q5_k,q6_k] [--threads 1,2] [--m 1,2,4,8,16,32,64]
//                     [--runs 7] [--isa scalar|avx2|avx512|avx512bf16|amx] [--layers 22] [--clock wall|cpu]
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant_k.h"
#include "kernels/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

using namespace specd::kernels;
using specd::GgmlType;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::vector<std::string> types = {"f16", "bf16"};
  std::vector<int> threads = {1, 2};
  std::vector<int> ms = {1, 2, 4, 8, 16, 32, 64};
  int runs = 7;
  int layers = 22;
  std::string isa;
};

bool g_cpu_clock = false;  // --clock cpu

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    const size_t q = std::min(s.find(',', p), s.size());
    if (q > p) out.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return out;
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--types") {
      o->types = split(v);
    } else if (k == "--threads" || k == "--m") {
      auto& dst = k == "--m" ? o->ms : o->threads;
      dst.clear();
      for (const auto& s : split(v)) dst.push_back(std::atoi(s.c_str()));
    } else if (k == "--runs") {
      o->runs = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--layers") {
      o->layers = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--isa") {
      o->isa = v;
    } else if (k == "--clock" && (v == "cpu" || v == "wall")) {
      g_cpu_clock = v == "cpu";
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

struct Matrix {
  std::unique_ptr<uint8_t[]> bytes;
  WeightView view;
};

// Random weights: about 64 KB of converted 2048-element rows, copied with a per-matrix rotation so every
// page is written (and faulted in) and no two matrices are identical. The pattern holds whole rows and
// the rotation is a multiple of the block size, so quantized blocks stay whole (real scales, no NaNs).
std::vector<Matrix> make_weights(GgmlType type, int layers) {
  const int64_t shapes[7][2] = {{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048},
                                {5632, 2048}, {5632, 2048}, {2048, 5632}};
  const size_t rb = specd::ggml_row_bytes(type, 2048), bb = std::max<size_t>(4, specd::ggml_block_bytes(type));
  std::vector<uint8_t> pattern((65536 / rb) * rb);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  std::vector<float> row(2048);
  std::vector<uint8_t> tmp(rb);
  for (size_t off = 0; off < pattern.size(); off += rb) {
    for (auto& v : row) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      v = static_cast<float>(static_cast<int64_t>(s % 2001) - 1000) * 1e-4f;
    }
    if (!quantize_row(type, row.data(), 2048, tmp.data())) {
      for (int i = 0; i < 2048; ++i) {
        if (type == GgmlType::F32) std::memcpy(&tmp[4 * i], &row[i], 4);
        const uint16_t h = type == GgmlType::F16 ? f32_to_f16(row[i]) : f32_to_bf16(row[i]);
        if (type != GgmlType::F32) std::memcpy(&tmp[2 * i], &h, 2);
      }
    }
    std::memcpy(&pattern[off], tmp.data(), rb);
  }
  std::vector<uint8_t> twice(pattern);
  twice.insert(twice.end(), pattern.begin(), pattern.end());
  std::vector<Matrix> out;
  for (int l = 0; l < layers; ++l) {
    for (const auto& sh : shapes) {
      const size_t wrb = specd::ggml_row_bytes(type, sh[1]);
      const size_t total = wrb * sh[0];
      Matrix m{std::make_unique<uint8_t[]>(total), WeightView{type, nullptr, sh[0], sh[1], wrb}};
      const size_t rot = (out.size() * bb * 97) % pattern.size();
      for (size_t off = 0; off < total; off += pattern.size()) {
        const size_t n = std::min(pattern.size(), total - off);
        std::memcpy(&m.bytes[off], &twice[rot], n);
      }
      m.view.data = m.bytes.get();
      out.push_back(std::move(m));
    }
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The same bytes read with 32-byte loads, split by rows into one contiguous chunk per thread.
__attribute__((target("avx2"))) uint64_t read_bytes(const uint8_t* p, size_t n) {
  __m256i acc = _mm256_setzero_si256();
  for (size_t i = 0; i + 32 <= n; i += 32) {
    acc = _mm256_xor_si256(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
  }
  return static_cast<uint64_t>(_mm256_extract_epi64(acc, 0) ^ _mm256_extract_epi64(acc, 3));
}

// Cores used by other processes, from /proc/stat's busy jiffies less this process's CPU time: the
// machine is shared, so calls taken while others ran are retried (up to 4x --runs) and flagged.
struct CpuSnap {
  double busy_s = 0, self_s = 0, cpu_ms = 0;
  Clock::time_point wall;
};

CpuSnap cpu_snap() {
  CpuSnap c;
  c.wall = Clock::now();
  if (FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long v[8] = {};
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
      c.busy_s = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / sysconf(_SC_CLK_TCK);
    }
    std::fclose(f);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  c.cpu_ms = 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
  c.self_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return c;
}

double other_cores(const CpuSnap& a, const CpuSnap& b) {
  const double wall = std::chrono::duration<double>(b.wall - a.wall).count();
  const double o = ((b.busy_s - a.busy_s) - (b.self_s - a.self_s)) / wall;
  return o < 0 ? 0 : o;
}

struct Timing {
  double median_ms, min_ms, max_ms, other_cores;
  bool quiet;
};

template <class F>
Timing time_calls(int runs, F&& call) {
  constexpr double kQuiet = 0.25;  // cores used by others during a call that still counts as quiet
  call();
  call();
  std::vector<double> quiet_ms, all_ms, quiet_other, all_other;
  for (int r = 0; r < 4 * runs && static_cast<int>(quiet_ms.size()) < runs; ++r) {
    const CpuSnap a = cpu_snap();
    call();
    const CpuSnap b = cpu_snap();
    const double ms = g_cpu_clock ? b.cpu_ms - a.cpu_ms : std::chrono::duration<double, std::milli>(b.wall - a.wall).count();
    const double o = other_cores(a, b);
    all_ms.push_back(ms), all_other.push_back(o);
    if (o < kQuiet || g_cpu_clock) quiet_ms.push_back(ms), quiet_other.push_back(o);
  }
  const bool quiet = static_cast<int>(quiet_ms.size()) >= runs;
  const auto& ms = quiet ? quiet_ms : all_ms;
  return {median(ms), *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end()),
          median(quiet ? quiet_other : all_other), quiet};
}

void print_line(const char* name, const char* type, int threads, int m, const Timing& t, int runs,
                double bytes, double macs, double ratio) {
  std::printf(
      "{\"name\":\"%s\",\"isa\":\"%s\",\"type\":\"%s\",\"threads\":%d,\"m\":%d,\"median_ms\":%.2f,"
      "\"min_ms\":%.2f,\"max_ms\":%.2f,\"runs\":%d,\"gbps\":%.2f,\"gflops\":%.1f,\"ratio_vs_m1\":%.3f,"
      "\"other_cores\":%.2f,\"quiet\":%s}\n",
      name, isa_name(active_isa()), type, threads, m, t.median_ms, t.min_ms, t.max_ms, runs,
      bytes / t.median_ms * 1e-6, 2 * macs / t.median_ms * 1e-6, ratio, t.other_cores, t.quiet ? "true" : "false");
  std::fflush(stdout);
}

void bench_type(const Options& o, const std::string& tname, GgmlType type) {
  const std::vector<Matrix> ws = make_weights(type, o.layers);
  double bytes = 0, params = 0;
  for (const auto& w : ws) bytes += static_cast<double>(w.view.row_bytes) * w.view.rows, params += static_cast<double>(w.view.rows) * w.view.cols;
  const int max_m = *std::max_element(o.ms.begin(), o.ms.end());
  std::vector<float> x(static_cast<size_t>(max_m) * 5632, 0.01f), y(static_cast<size_t>(max_m) * 5632);
  for (int threads : o.threads) {
    ThreadPool pool(threads);
    uint64_t sink[64] = {};
    const Timing st = time_calls(o.runs, [&] {
      for (const auto& w : ws) {
        auto task = [&](int64_t t, int) {
          const size_t total = w.view.row_bytes * w.view.rows, half = total / threads / 64 * 64;
          const size_t b = half * t, e = t + 1 == threads ? total : b + half;
          sink[t] += read_bytes(w.bytes.get() + b, e - b);  // only defeats dead-code elimination
        };
        pool.run(threads, task);
      }
    });
    print_line("stream_read", tname.c_str(), threads, 0, st, o.runs, bytes, 0, 1.0);
    double l1 = 0;
    for (int m : o.ms) {
      const Timing t = time_calls(o.runs, [&] {
        for (const auto& w : ws) matmul(w.view, x.data(), w.view.cols, m, y.data(), w.view.rows, pool);
      });
      if (m == o.ms.front()) l1 = t.median_ms;
      print_line("matmul_1b", tname.c_str(), threads, m, t, o.runs, bytes, params * m, t.median_ms / l1);
    }
    if (sink[0] == 42) std::printf("#\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, &o)) {
    std::fprintf(stderr, "usage: kernel-bench [--types f16,bf16,f32,q8_0,q4_0,q4_k,q5_k,q6_k] [--threads 1,2] [--m 1,2,4,...] "
                         "[--runs N] [--isa scalar|avx2|avx512|avx512bf16|amx] [--layers N] [--clock wall|cpu]\n");
    return 2;
  }
  if (!o.isa.empty()) {
    Isa want = Isa::Scalar;
    for (Isa i : {Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx}) {
      if (o.isa == isa_name(i)) want = i;
    }
    if (o.isa != isa_name(want) || !set_isa(want)) std::fprintf(stderr, "kernel-bench: %s not supported here, using %s\n", o.isa.c_str(), isa_name(active_isa()));
  }
  for (const auto& t : o.types) {
    GgmlType type;
    if (!specd::ggml_type_from_name(t, &type)) {
      std::fprintf(stderr, "kernel-bench: unknown type %s\n", t.c_str());
      return 2;
    }
    bench_type(o, t, type);
  }
  return 0;
}
