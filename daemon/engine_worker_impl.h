// EngineWorker's private state, shared by engine_worker.cpp (the loop thread's side) and
// engine_loop.cpp (the engine thread). Nothing outside those two files includes it.
#pragma once

#include "daemon/decode_runtime.h"
#include "daemon/engine_worker.h"
#include "daemon/model_placement.h"
#include "daemon/plugin_loader.h"
#include "kernels/cpu/thread_pool.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace specd::daemon {
namespace worker_detail {

struct ModelSlot {
  std::string name;
  const engine::Model* model = nullptr;
  PlacedModel placed;  // its backend and weights; outlives rt
  std::unique_ptr<DecodeRuntime> rt;
  uint64_t steps = 0;  // runtime steps so far: a request's forwards are steps since its admission
};

// What the loop thread asked for since the engine thread last looked; guarded by Impl::mu.
struct Commands {
  std::deque<GenerateJob> jobs;
  std::vector<RequestKey> cancels;
  std::vector<uint64_t> conn_cancels;
  bool cancel_all = false;
  bool rescan = false;
  bool any() const { return !jobs.empty() || !cancels.empty() || !conn_cancels.empty() || cancel_all || rescan; }
  // Empty it, keeping the containers' memory (the engine thread reuses one Commands per iteration).
  void clear() {
    jobs.clear();
    cancels.clear();
    conn_cancels.clear();
    cancel_all = rescan = false;
  }
};

// Tokens events go to the loop thread and come back through recycle_events, so a step reuses their
// buffers instead of allocating; at most this many wait on each side (more are freed).
inline constexpr size_t kSpareEvents = 256;
inline constexpr size_t kEventTokens = 64;  // tokens a new Tokens event has room for (text: 8 bytes each)

// One admitted request; the runtime's callbacks get it as their user pointer.
struct Live {
  std::vector<EngineEvent>* out = nullptr;    // the engine thread's events of this iteration
  std::vector<EngineEvent>* spare = nullptr;  // handled Tokens events whose buffers on_tokens reuses
  ModelSlot* slot = nullptr;
  RequestKey key;
  int64_t rt_id = 0;
  int32_t prompt_tokens = 0;
  int32_t prompt_last = -1;
  uint64_t admitted_at = 0;  // slot->steps at admission
  bool done = false;
  bool engine_fault = false;  // an exception escaped a step: report INTERNAL, not "cancel"
};

// The runtime's callbacks for a Live request (engine_loop.cpp). on_tokens takes a Tokens event from
// *spare when one is there, so in steady state it allocates nothing.
void on_tokens(int64_t id, const int32_t* tokens, int32_t n, std::string_view text, void* user);
void on_finished(int64_t id, const DecodeResult& result, void* user);
// Move the Tokens events of *used, emptied but with their capacity, to the back of *spare while it
// holds fewer than kSpareEvents (the rest are freed); *used ends empty.
void keep_spare(std::vector<EngineEvent>* used, std::vector<EngineEvent>* spare);

}  // namespace worker_detail

struct EngineWorker::Impl {
  using ModelSlot = worker_detail::ModelSlot;
  using Commands = worker_detail::Commands;
  using Live = worker_detail::Live;

  WorkerOptions opts;
  PluginRegistry plugins;
  std::unique_ptr<kernels::ThreadPool> pool;
  std::vector<std::unique_ptr<ModelSlot>> slots;
  void (*wake)(void*) = nullptr;
  void* wake_user = nullptr;

  mutable std::mutex mu;  // guards the fields down to `snap`
  std::condition_variable cv;
  Commands cmds;
  bool stopping = false;
  bool admission_closed = false;
  int32_t outstanding = 0;
  std::vector<EngineEvent> events;
  std::string device_lost;  // EngineWorker::device_lost()
  bool rescanned = false;   // a rescan finished since take_rescanned() last looked
  EngineSnapshot snap;
  std::vector<EngineEvent> returned;  // handled events from recycle_events, for the engine thread's spare
  std::chrono::steady_clock::time_point last_iteration = std::chrono::steady_clock::now();

  // Engine thread only.
  std::deque<GenerateJob> waiting;
  std::map<RequestKey, std::unique_ptr<Live>> live;
  std::vector<EngineEvent> out;  // this iteration's events, published in one go
  std::vector<EngineEvent> spare;  // Tokens events to reuse (refilled from `returned` in publish)
  std::jthread thread;

  void run();
  bool wait_for_work(Commands* c);
  void apply(Commands& c);
  void admit_waiting();
  ModelSlot* prepare(GenerateJob& job);
  void admit(GenerateJob& job, ModelSlot* slot);
  void finish_unadmitted(const GenerateJob& job, int32_t reason, Error err);
  void cancel_where(bool (*match)(const RequestKey&, const void*), const void* arg);
  void step_all();
  void publish();
  void rescan();
  void refresh_decoders();
};

}  // namespace specd::daemon
