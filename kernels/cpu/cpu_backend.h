// The CPU backend: kernels/backend.h over host memory, today's SIMD kernels and a thread pool.
//
// Ops run when called (the queue is trivially in order), so sync() never waits and never fails.
// Weights are read in place from the host memory they are in (usually the mapped model file).
#pragma once

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

#include <memory>

namespace specd::kernels {

// A CPU backend computing on pool's threads; pool must outlive it.
std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool);

}  // namespace specd::kernels
