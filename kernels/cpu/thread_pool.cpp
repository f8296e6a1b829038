// ThreadPool: persistent workers that spin briefly on a generation counter, then sleep on a futex.
//
// A region opens when run() bumps the generation; workers claim tasks from a shared counter and the
// caller takes part. When the caller runs out of tasks it closes the region and waits only for
// workers that joined it, so a worker still waking from the futex (tens of microseconds on a VM)
// never delays run(): the caller has simply done that worker's share.
#include "kernels/cpu/thread_pool.h"

#include "kernels/cpu/matmul_impl.h"

#include <chrono>
#include <climits>
#include <thread>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace specd::kernels {
namespace {

// Long enough to bridge the gaps between matmuls of one forward (attention, norms run on the
// caller), short enough that an idle daemon does not keep a core busy.
constexpr auto kSpin = std::chrono::microseconds(80);
constexpr uint64_t kClosed = 1ull << 31;       // region_: no worker may join any more
constexpr uint64_t kInside = kClosed - 1;      // region_: workers inside the region

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex needs a plain 32-bit word");

uint32_t* futex_word(std::atomic<uint32_t>& a) { return reinterpret_cast<uint32_t*>(&a); }

void futex_wait(std::atomic<uint32_t>& a, uint32_t expected) {
  // Returns at once if the word no longer holds `expected`, so a wake cannot be lost.
  syscall(SYS_futex, futex_word(a), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& a) {
  syscall(SYS_futex, futex_word(a), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() or kSpin elapses; the clock is read only every 64 rounds.
template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (uint32_t i = 1;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > deadline) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
  // Returns once every worker holds its scratch, so nothing allocates after construction.
  while (ready_.load(std::memory_order_acquire) < n_threads_ - 1) std::this_thread::yield();
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes stop_
  futex_wake_all(generation_);
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks(int worker) {
  const TaskRef& fn = *fn_;
  for (;;) {
    const int64_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (t >= n_tasks_) return;
    fn(t, worker);
  }
}

void ThreadPool::run(int64_t n_tasks, TaskRef fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  region_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);  // open, nobody inside
  // seq_cst pairs with the sleepers' increment-then-recheck: either they see the new generation
  // or we see them counted and wake them.
  generation_.store(gen, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) futex_wake_all(generation_);
  run_tasks(0);
  close_region();
  fn_ = nullptr;
}

// A worker may enter only the region it was woken for, and only while it is open.
bool ThreadPool::join_region(uint32_t gen) {
  uint64_t s = region_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(s >> 32) != gen || (s & kClosed) != 0) return false;
    if (region_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_acquire)) return true;
  }
}

// Bars late workers (a worker still waking up gets no task; the caller has run them all), then waits
// for the ones inside: they are running a task, so this wait is at most one task long.
void ThreadPool::close_region() {
  uint64_t s = region_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
  for (uint32_t i = 1; (s & kInside) != 0; ++i) {
    if (i % 1024 == 0) {
      std::this_thread::yield();  // a preempted worker needs a core to finish on
    } else {
      cpu_relax();
    }
    s = region_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_main(int index) {
  reserve_thread_scratch();  // before any task: the first one may come mid-decode
  ready_.fetch_add(1, std::memory_order_release);
  uint32_t seen = 0;  // generation_ starts at 0 and the constructor runs no region
  for (;;) {
    auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(fresh)) {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      while (generation_.load(std::memory_order_seq_cst) == seen) futex_wait(generation_, seen);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    if (!join_region(seen)) continue;
    run_tasks(index);
    region_.fetch_sub(1, std::memory_order_release);  // hands our writes to close_region's acquire
  }
}

}  // namespace specd::kernels
