// EngineWorker, the loop thread's side: start-up, the command queue, events and the snapshot.
#include "daemon/engine_worker.h"

#include "daemon/engine_worker_impl.h"
#include "daemon/log.h"
#include "daemon/runtime_setup.h"
#include "daemon/startup_summary.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

namespace specd::daemon {

EngineWorker::EngineWorker() : impl_(std::make_unique<Impl>()) {}

EngineWorker::~EngineWorker() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
    impl_->cmds.cancel_all = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<EngineWorker>> EngineWorker::start(WorkerOptions opts, void (*wake)(void*), void* user) {
  if (opts.models.empty()) return make_error(SPECD_E_INVALID_ARG, "no model configured");
  if (!opts.models.count(opts.default_model))
    return make_error(SPECD_E_UNKNOWN_MODEL, "default model '%s' is not configured", opts.default_model.c_str());
  std::unique_ptr<EngineWorker> w(new EngineWorker());  // private constructor: make_unique cannot reach it
  Impl& m = *w->impl_;
  m.opts = std::move(opts);
  m.wake = wake;
  m.wake_user = user;
  load_plugin_dirs(m.plugins, m.opts.plugin_dirs);
  // A daemon with no decoder would report READY and fail every request: refuse to start instead.
  if (m.plugins.list().empty()) {
    std::string dirs;
    for (const auto& d : m.opts.plugin_dirs) dirs += (dirs.empty() ? "" : ", ") + d;
    return make_error(SPECD_E_PLUGIN, "no decoder could be loaded from the plugin directories (%s); each refusal is logged above",
                      dirs.empty() ? "none configured" : dirs.c_str());
  }
  log_decoders(m.plugins);
  if (!m.plugins.find("ar"))
    log_line(LogLevel::Warn, "no 'ar' decoder was loaded; requests that name no decoder will fail");
  log_engine(std::max(1, m.opts.threads), m.opts.kv_bytes, m.opts.models.size());
  m.pool = std::make_unique<kernels::ThreadPool>(std::max(1, m.opts.threads));
  RuntimeLimits limits;
  limits.max_sequences = m.opts.max_concurrent;
  limits.kv_bytes = static_cast<size_t>(m.opts.kv_bytes / m.opts.models.size());
  limits.plugin_bytes = static_cast<size_t>(m.opts.plugin_bytes);
  limits.side_files = m.opts.side_files;
  for (const auto& [name, model] : m.opts.models) {
    auto slot = std::make_unique<Impl::ModelSlot>();
    slot->name = name;
    slot->model = model.get();
    const auto dev = m.opts.devices.find(name);
    const auto mem = m.opts.device_memory.find(name);
    auto placed = place_model(*model, dev != m.opts.devices.end() ? dev->second : "auto", *m.pool, limits.kv_bytes,
                              mem != m.opts.device_memory.end() ? static_cast<size_t>(mem->second) : 0);
    if (!placed) return make_error(placed.error().code, "model '%s': %s", name.c_str(), placed.error().message.c_str());
    slot->placed = std::move(*placed);
    slot->rt = std::make_unique<DecodeRuntime>(*model, m.plugins, *m.pool, limits, slot->placed.weights.get());
    log_model(name, slot->placed.why, *slot->rt, m.opts.models.size());
    m.slots.push_back(std::move(slot));
  }
  m.spare.reserve(worker_detail::kSpareEvents);
  m.returned.reserve(worker_detail::kSpareEvents);
  m.refresh_decoders();
  m.publish();
  m.thread = std::jthread([&m] { m.run(); });
  return w;
}

Status EngineWorker::submit(GenerateJob job) {
  if (job.req.arrived == std::chrono::steady_clock::time_point{}) job.req.arrived = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->admission_closed) return make_error(SPECD_E_CANCELED, "the daemon is shutting down");
    const int32_t cap = impl_->opts.max_concurrent + impl_->opts.max_queued;
    if (impl_->outstanding >= cap)
      return make_error(SPECD_E_LIMIT, "too many requests: %d running and %d queued (limits.max_concurrent, limits.max_queued)",
                        impl_->opts.max_concurrent, impl_->opts.max_queued);
    // An engine that idled has hung for no time: its step clock starts with this request.
    if (impl_->outstanding++ == 0) impl_->last_iteration = std::chrono::steady_clock::now();
    impl_->cmds.jobs.push_back(std::move(job));
  }
  impl_->cv.notify_one();
  return {};
}

void EngineWorker::cancel(RequestKey key) {
  {
    std::lock_guard lk(impl_->mu);
    impl_->cmds.cancels.push_back(key);
  }
  impl_->cv.notify_one();
}

void EngineWorker::cancel_connection(uint64_t conn) {
  {
    std::lock_guard lk(impl_->mu);
    impl_->cmds.conn_cancels.push_back(conn);
  }
  impl_->cv.notify_one();
}

void EngineWorker::cancel_all() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->cmds.cancel_all = true;
  }
  impl_->cv.notify_one();
}

void EngineWorker::stop_admission() {
  std::lock_guard lk(impl_->mu);
  impl_->admission_closed = true;
}

void EngineWorker::rescan_plugins() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->cmds.rescan = true;
  }
  impl_->cv.notify_one();
}

bool EngineWorker::take_rescanned() {
  std::lock_guard lk(impl_->mu);
  return std::exchange(impl_->rescanned, false);
}

void EngineWorker::take_events(std::vector<EngineEvent>* out) {
  std::lock_guard lk(impl_->mu);
  for (auto& e : impl_->events) out->push_back(std::move(e));
  impl_->events.clear();
}

void EngineWorker::recycle_events(std::vector<EngineEvent>* used) {
  std::lock_guard lk(impl_->mu);
  worker_detail::keep_spare(used, &impl_->returned);
}

EngineSnapshot EngineWorker::snapshot() const {
  std::lock_guard lk(impl_->mu);
  return impl_->snap;
}

int32_t EngineWorker::outstanding() const {
  std::lock_guard lk(impl_->mu);
  return impl_->outstanding;
}

std::string EngineWorker::device_lost() const {
  std::lock_guard lk(impl_->mu);
  return impl_->device_lost;
}

bool EngineWorker::responsive(double max_ms) const {
  std::lock_guard lk(impl_->mu);
  const double since = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - impl_->last_iteration).count();
  return impl_->outstanding == 0 || since <= max_ms;
}

const std::map<std::string, std::unique_ptr<engine::Model>>& EngineWorker::models() const { return impl_->opts.models; }
const std::string& EngineWorker::default_model() const { return impl_->opts.default_model; }

int32_t EngineWorker::max_prompt_tokens() const {
  for (const auto& s : impl_->slots)  // slots and their context limits are fixed at start()
    if (s->name == impl_->opts.default_model) return std::max(0, s->rt->context_limit() - 1);
  return 0;
}

}  // namespace specd::daemon
