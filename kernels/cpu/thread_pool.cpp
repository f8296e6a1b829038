// ThreadPool: persistent workers that spin briefly on a generation counter, then sleep on a futex.
#include "kernels/cpu/thread_pool.h"

#include <chrono>
#include <climits>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace specd::kernels {
namespace {

// Long enough to bridge the gaps between matmuls of one forward (attention, norms run on the
// caller), short enough that an idle daemon does not keep a core busy.
constexpr auto kSpin = std::chrono::microseconds(80);

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
  pending_.store(static_cast<uint32_t>(n_threads_ - 1), std::memory_order_relaxed);
  // seq_cst pairs with the sleepers' increment-then-recheck: either they see the new generation
  // or we see them counted and wake them.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) futex_wake_all(generation_);
  run_tasks(0);
  wait_for_workers();
  fn_ = nullptr;
}

// Every worker must check in before the region's state may be reused, even one that got no task.
void ThreadPool::wait_for_workers() {
  auto done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(done)) return;
  caller_waiting_.store(1, std::memory_order_seq_cst);
  for (;;) {
    const uint32_t p = pending_.load(std::memory_order_seq_cst);
    if (p == 0) break;
    futex_wait(pending_, p);
  }
  caller_waiting_.store(0, std::memory_order_relaxed);
}

void ThreadPool::worker_main(int index) {
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
    run_tasks(index);
    // The last one to finish wakes the caller if it went to sleep (seq_cst pairs with its store).
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_waiting_.load(std::memory_order_seq_cst) != 0) {
      futex_wake_all(pending_);
    }
  }
}

}  // namespace specd::kernels
