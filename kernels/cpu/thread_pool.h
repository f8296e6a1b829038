// ThreadPool: persistent workers that run one parallel region at a time (the caller takes part).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace specd::kernels {

// A non-owning callable reference (no allocation, unlike std::function): fn(task_index, thread_index).
class TaskRef {
 public:
  template <class F>
  TaskRef(F& f)  // NOLINT(google-explicit-constructor)
      : obj_(&f), call_([](void* o, int64_t t, int w) { (*static_cast<F*>(o))(t, w); }) {}
  void operator()(int64_t task, int worker) const { call_(obj_, task, worker); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int);
};

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline. Returns when every
  // worker has started and reserved its kernel scratch (matmul_impl.h: reserve_thread_scratch).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Run fn(t, worker) for t in [0, n_tasks), spread over the threads; returns when all are done.
  // Allocation-free. Not reentrant: fn must not call run() on the same pool.
  void run(int64_t n_tasks, TaskRef fn);

 private:
  void worker_main(int index);
  void run_tasks(int worker);
  bool join_region(uint32_t gen);
  void close_region();
  int n_threads_;
  std::vector<std::thread> workers_;
  // generation_ counts regions (the futex word idle workers sleep on). region_ is
  // (generation << 32) | closed bit | workers inside the region: a worker joins with a CAS only
  // while its region is open, so run() never waits for a worker that is still waking up.
  // fn_/n_tasks_/next_task_ are written before region_ opens (release) and read after joining (acquire).
  alignas(64) std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> sleepers_{0};  // workers blocked (or about to block) in futex_wait
  alignas(64) std::atomic<uint64_t> region_{0};
  alignas(64) std::atomic<int64_t> next_task_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> ready_{0};  // workers that have started and reserved their scratch
  int64_t n_tasks_ = 0;
  const TaskRef* fn_ = nullptr;
};

}  // namespace specd::kernels
