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
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline.
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
  int n_threads_;
  std::vector<std::thread> workers_;
  // ... implementation state (generation counter, next task, done count) chosen by the implementer
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> stop_{false};
  int64_t n_tasks_ = 0;
  const TaskRef* fn_ = nullptr;
};

}  // namespace specd::kernels
