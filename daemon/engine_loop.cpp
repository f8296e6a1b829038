// EngineWorker, the engine thread: take commands, admit, step the runtimes, publish events, rescan.
#include "daemon/engine_worker_impl.h"

#include "daemon/decoder_catalog.h"

#include <specd/decoder.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace specd::daemon {
namespace worker_detail {

void on_tokens(int64_t, const int32_t* tokens, int32_t n, std::string_view text, void* user) {
  auto* l = static_cast<Live*>(user);
  if (n <= 0) return;
  EngineEvent e;
  if (l->spare && !l->spare->empty()) {  // a handled event: its buffers keep their capacity
    e = std::move(l->spare->back());
    l->spare->pop_back();
  } else {  // room for a typical multi-token emit, so a spare rarely has to grow
    e.tokens.reserve(kEventTokens);
    e.text.reserve(kEventTokens * 8);
  }
  e.kind = EngineEvent::Kind::Tokens;
  e.key = l->key;
  e.tokens.assign(tokens, tokens + n);
  e.text.assign(text);
  e.step = static_cast<uint32_t>(l->slot->steps - l->admitted_at);
  l->out->push_back(std::move(e));
}

void on_finished(int64_t, const DecodeResult& result, void* user) {
  auto* l = static_cast<Live*>(user);
  EngineEvent e;
  e.kind = EngineEvent::Kind::Finished;
  e.key = l->key;
  e.result = result;
  if (l->engine_fault) {
    e.result.finish_reason = SPECD_FINISH_ERROR;
    e.result.error = make_error(SPECD_E_INTERNAL, "the engine failed during a step; see the daemon's log");
  }
  e.model = l->slot->name;
  e.prompt_tokens = l->prompt_tokens;
  e.prompt_last = l->prompt_last;
  l->done = true;
  l->out->push_back(std::move(e));
}

void keep_spare(std::vector<EngineEvent>* used, std::vector<EngineEvent>* spare) {
  for (EngineEvent& e : *used) {
    if (e.kind != EngineEvent::Kind::Tokens || spare->size() >= kSpareEvents) continue;
    e.tokens.clear();
    e.text.clear();
    spare->push_back(std::move(e));
  }
  used->clear();
}

}  // namespace worker_detail

namespace {

using worker_detail::Live;
using worker_detail::ModelSlot;

std::string model_names(const std::vector<std::unique_ptr<ModelSlot>>& slots) {
  std::string s;
  for (const auto& m : slots) s += (s.empty() ? "" : ", ") + m->name;
  return s;
}

}  // namespace


void EngineWorker::Impl::run() {
  Commands c;  // one for the thread's life: a fresh std::deque would allocate every iteration
  for (;;) {
    c.clear();
    const bool stop = wait_for_work(&c);
    try {
      apply(c);
      admit_waiting();
      step_all();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "specd: engine thread: %s\n", e.what());
    }
    publish();
    if (stop && live.empty() && waiting.empty()) return;
  }
}

// Blocks while there is nothing to do; returns whether the worker is stopping.
bool EngineWorker::Impl::wait_for_work(Commands* c) {
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return stopping || cmds.any() || !live.empty() || !waiting.empty(); });
  std::swap(*c, cmds);
  return stopping;
}

void EngineWorker::Impl::apply(Commands& c) {
  if (c.rescan) {
    rescan();
    {
      std::lock_guard lk(mu);
      rescanned = true;
    }
    if (wake) wake(wake_user);  // the loop tells systemd the reload is done (Server::on_engine_events)
  }
  for (auto& job : c.jobs) waiting.push_back(std::move(job));
  for (const RequestKey& k : c.cancels)
    cancel_where([](const RequestKey& a, const void* b) { return a == *static_cast<const RequestKey*>(b); }, &k);
  for (const uint64_t conn : c.conn_cancels)
    cancel_where([](const RequestKey& a, const void* b) { return a.conn == *static_cast<const uint64_t*>(b); }, &conn);
  if (c.cancel_all) cancel_where([](const RequestKey&, const void*) { return true; }, nullptr);
}

// Running requests end with "cancel" at their next step; waiting ones end here and now.
void EngineWorker::Impl::cancel_where(bool (*match)(const RequestKey&, const void*), const void* arg) {
  for (auto& [key, l] : live)
    if (match(key, arg)) l->slot->rt->cancel(l->rt_id);
  for (auto it = waiting.begin(); it != waiting.end();) {
    if (!match(it->key, arg)) {
      ++it;
      continue;
    }
    finish_unadmitted(*it, SPECD_FINISH_CANCEL, Error{SPECD_OK, ""});
    it = waiting.erase(it);
  }
}

void EngineWorker::Impl::finish_unadmitted(const GenerateJob& job, int32_t reason, Error err) {
  EngineEvent e;
  e.kind = EngineEvent::Kind::Finished;
  e.key = job.key;
  e.result.finish_reason = reason;
  e.result.error = std::move(err);
  e.model = job.model.empty() ? opts.default_model : job.model;
  e.prompt_tokens = static_cast<int32_t>(job.req.prompt.size());
  out.push_back(std::move(e));
}

// Admission in arrival order, per model: a request whose KV reservation (or sequence slot) is
// taken by running requests waits, and so does every later request for the same model, so a
// large request is never starved by small ones behind it. Requests for other models go on.
// A request that could not run even on an idle runtime is not held, even while max_concurrent
// are running: submit() refuses it now.
void EngineWorker::Impl::admit_waiting() {
  using Admission = DecodeRuntime::Admission;
  std::vector<const ModelSlot*> blocked;
  for (auto it = waiting.begin(); it != waiting.end();) {
    try {
      ModelSlot* slot = prepare(*it);
      const Admission a = slot ? slot->rt->admission(it->req) : Admission::Refuse;
      const bool behind = std::find(blocked.begin(), blocked.end(), slot) != blocked.end();
      const bool busy = live.size() >= static_cast<size_t>(opts.max_concurrent);
      if (a == Admission::Wait || (a == Admission::Now && (behind || busy))) {
        if (!behind) blocked.push_back(slot);
        ++it;
        continue;
      }
      if (slot) admit(*it, slot);
    } catch (const std::exception& e) {  // e.g. bad_alloc: this request fails, the engine goes on
      finish_unadmitted(*it, SPECD_FINISH_ERROR, make_error(SPECD_E_INTERNAL, "admission failed: %s", e.what()));
    }
    it = waiting.erase(it);
  }
}

// The job's model (nullptr once it was finished with SPECD_E_UNKNOWN_MODEL) with the prompt
// tokenized, so its KV need is known while it waits.
EngineWorker::Impl::ModelSlot* EngineWorker::Impl::prepare(GenerateJob& job) {
  const std::string& name = job.model.empty() ? opts.default_model : job.model;
  auto slot_it = std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s->name == name; });
  if (slot_it == slots.end()) {
    finish_unadmitted(job, SPECD_FINISH_ERROR, make_error(SPECD_E_UNKNOWN_MODEL, "unknown model '%s' (configured: %s)",
                                                          name.c_str(), model_names(slots).c_str()));
    return nullptr;
  }
  ModelSlot* slot = slot_it->get();
  if (job.req.prompt.empty() && !job.prompt_text.empty())
    job.req.prompt = slot->model->encode_prompt(job.prompt_text, job.parse_special);
  return slot;
}

void EngineWorker::Impl::admit(GenerateJob& job, ModelSlot* slot) {
  DecodeRequest& req = job.req;
  req.stop_tokens = slot->model->stop_tokens();  // as `specd generate`
  auto l = std::make_unique<Live>();
  l->out = &out;
  l->spare = &spare;
  l->slot = slot;
  l->key = job.key;
  l->prompt_tokens = static_cast<int32_t>(req.prompt.size());
  l->prompt_last = req.prompt.empty() ? -1 : req.prompt.back();
  l->admitted_at = slot->steps;
  auto id = slot->rt->submit(std::move(req), DecodeCallbacks{worker_detail::on_tokens, worker_detail::on_finished, l.get()});
  if (!id) {
    EngineEvent e;
    e.kind = EngineEvent::Kind::Finished;
    e.key = job.key;
    e.result.finish_reason = SPECD_FINISH_ERROR;
    e.result.error = id.error();
    e.model = slot->name;
    e.prompt_tokens = l->prompt_tokens;
    out.push_back(std::move(e));
    return;
  }
  l->rt_id = id.value();
  live[job.key] = std::move(l);
}

void EngineWorker::Impl::step_all() {
  for (auto& slot : slots) {
    if (slot->rt->idle()) continue;
    ++slot->steps;
    try {
      slot->rt->step();
      if (slot->rt->forward().backend().device_lost()) {
        std::lock_guard lk(mu);
        if (device_lost.empty()) {
          device_lost = "model '" + slot->name + "': device ";
          device_lost.append(slot->rt->forward().backend().name()).append(" lost (a sticky device error)");
        }
      }
    } catch (const std::exception& e) {
      // The runtime's state for this step is unknown: end its requests rather than guess.
      std::fprintf(stderr, "specd: engine step on model '%s' failed: %s\n", slot->name.c_str(), e.what());
      for (auto& [key, l] : live) {
        if (l->slot != slot.get()) continue;
        l->engine_fault = true;
        slot->rt->cancel(l->rt_id);
      }
    }
  }
  for (auto it = live.begin(); it != live.end();) it = it->second->done ? live.erase(it) : std::next(it);
}

void EngineWorker::Impl::publish() {
  bool any = false;
  {
    std::lock_guard lk(mu);
    for (auto& e : out) {
      if (e.kind == EngineEvent::Kind::Finished) --outstanding;
      events.push_back(std::move(e));
      any = true;
    }
    worker_detail::keep_spare(&returned, &spare);
    last_iteration = std::chrono::steady_clock::now();
    snap.active = static_cast<int32_t>(live.size());
    snap.queued = static_cast<int32_t>(waiting.size());
    snap.kv_blocks_total = snap.kv_blocks_free = snap.kv_blocks_reserved = 0;
    snap.devices.resize(slots.size());  // names set once; the figures in place, so steady state allocates nothing
    for (size_t i = 0; i < slots.size(); ++i) {
      ModelSlot& s = *slots[i];
      ModelDeviceSnapshot& d = snap.devices[i];
      kernels::Backend& be = s.rt->forward().backend();
      if (d.model.empty()) d.model = s.name, d.device = be.name();
      d.memory_used = be.ledger().total_used();
      d.memory_total = be.memory_capacity();
      d.kv_blocks_total = s.rt->kv().n_blocks();
      d.kv_blocks_free = s.rt->kv().n_free_blocks();
      d.kv_blocks_reserved = s.rt->kv_reserved_blocks();
      snap.kv_blocks_total += d.kv_blocks_total;
      snap.kv_blocks_free += d.kv_blocks_free;
      snap.kv_blocks_reserved += d.kv_blocks_reserved;
      snap.kv_bytes_per_block = s.rt->kv().bytes_per_block();
    }
  }
  out.clear();
  if (any && wake) wake(wake_user);
}

// Load the decoders added to the plugin dirs since the last scan. Loaded ones stay (running
// requests hold their descriptors); a changed file at a loaded path is not reloaded.
void EngineWorker::Impl::rescan() {
  namespace fs = std::filesystem;
  std::vector<fs::path> loaded;
  std::error_code ec;
  for (const LoadedDecoder* d : plugins.list()) loaded.push_back(fs::weakly_canonical(d->path, ec));
  int added = 0;
  for (const auto& dir : opts.plugin_dirs) {
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ".so") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (std::find(loaded.begin(), loaded.end(), fs::weakly_canonical(f, ec)) != loaded.end()) continue;
      Status st = plugins.load_file(f.string());
      if (st) ++added;
      else std::fprintf(stderr, "specd: refused %s: %s\n", f.c_str(), st.error().message.c_str());
    }
  }
  std::fprintf(stderr, "specd: plugin rescan: %d new decoder(s)\n", added);
  refresh_decoders();
}

void EngineWorker::Impl::refresh_decoders() {
  std::vector<DecoderSnapshot> list;
  for (const LoadedDecoder* d : plugins.list())
    list.push_back({d->name, d->desc->version ? d->desc->version : "", d->desc->description ? d->desc->description : "",
                    d->path, decoder_json(*d).dump()});
  std::lock_guard lk(mu);
  snap.decoders = std::move(list);
}

}  // namespace specd::daemon
