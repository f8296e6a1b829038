// Model loading with progress and a parallel read-in of the mapped weights (see model_loading.h).
#include "daemon/model_loading.h"

#include "daemon/log.h"

#include <algorithm>
#include <chrono>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace specd::daemon {

void prefault(std::span<const uint8_t> bytes, int threads, std::atomic<size_t>* done) {
  if (bytes.empty()) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  // Hint the kernel to read ahead; the touches below make sure every page is in.
  const uintptr_t start = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
  ::madvise(reinterpret_cast<void*>(start), bytes.size() + (reinterpret_cast<uintptr_t>(bytes.data()) - start),
            MADV_WILLNEED);
  // Each thread takes contiguous 8 MiB chunks in turn, so reads stay sequential per thread.
  constexpr size_t kChunk = size_t{8} << 20;
  const size_t n_chunks = (bytes.size() + kChunk - 1) / kChunk;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t c = next++; c < n_chunks; c = next++) {
      const size_t lo = c * kChunk, hi = std::min(bytes.size(), lo + kChunk);
      uint8_t sink = 0;
      for (size_t i = lo; i < hi; i += page) sink ^= static_cast<const volatile uint8_t&>(bytes[i]);
      [[maybe_unused]] volatile uint8_t keep = sink;
      if (done) *done += hi - lo;
    }
  };
  std::vector<std::jthread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
}

Result<std::unique_ptr<engine::Model>> load_model_with_progress(const std::string& name, const std::string& path,
                                                               int threads) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  log_line(LogLevel::Info, "loading model '%s' from %s", name.c_str(), path.c_str());
  auto m = engine::Model::load(path);
  if (!m) return make_error(m.error().code, "cannot load model '%s' from %s: %s", name.c_str(), path.c_str(), m.error().message.c_str());
  const std::span<const uint8_t> bytes = m.value()->file().bytes();
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> done{0};
  std::jthread reader([&] { prefault(bytes, std::min(n, 8), &done); });  // disk-bound: a few readers suffice
  const double mib = static_cast<double>(bytes.size()) / (1 << 20);
  for (auto next = Clock::now() + std::chrono::seconds(1); done.load() < bytes.size();) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (Clock::now() < next) continue;
    next += std::chrono::seconds(1);
    log_line(LogLevel::Info, "model '%s': read %.0f of %.0f MiB", name.c_str(), static_cast<double>(done.load()) / (1 << 20), mib);
  }
  reader.join();
  log_line(LogLevel::Info, "model '%s' loaded (%.0f MiB) in %.2f s", name.c_str(), mib,
           std::chrono::duration<double>(Clock::now() - t0).count());
  return m;
}

}  // namespace specd::daemon
