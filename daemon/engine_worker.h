// EngineWorker: the engine thread — models, decoders, the decoding runtimes, admission and events.
//
// docs: ARCHITECTURE.md §2. The loop thread hands requests in through submit()/cancel*() (a
// bounded queue under one mutex); the engine thread admits up to max_concurrent of them into the
// runtimes while their KV reservations fit (docs in decode_runtime.cpp), keeps the rest waiting in
// arrival order per model (at most max_queued more), steps the runtimes, and hands TokenEvents and
// exactly one Finished event per submitted request back through an event queue, calling wake()
// (uv_async_send on the loop) whenever it added some. Decoders run only on this thread.
#pragma once

#include "daemon/decode_request.h"
#include "daemon/side_file_policy.h"
#include "engine/model.h"
#include "kernels/result.h"

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace specd::daemon {

// A request is named by its connection and the client's request_id on that connection.
struct RequestKey {
  uint64_t conn = 0;
  uint64_t id = 0;
  auto operator<=>(const RequestKey&) const = default;
};

struct GenerateJob {
  RequestKey key;
  std::string model;                // empty: the default model
  std::string prompt_text;          // tokenized here (with BOS) when prompt_ids is empty
  bool parse_special = false;       // special tokens written in prompt_text are tokens (a rendered chat template)
  DecodeRequest req;                // prompt (if given as ids), limits, sampling, decoder; stop tokens are added here
};

struct EngineEvent {
  enum class Kind { Tokens, Finished };
  Kind kind = Kind::Tokens;
  RequestKey key;
  std::vector<int32_t> tokens;      // Tokens: the ids one emit() took
  std::string text;                 // Tokens: their bytes as the runtime detokenized them (may end mid-character)
  uint32_t step = 0;                // Tokens: forwards this request took part in so far
  // Finished: the result (finish_reason SPECD_FINISH_ERROR with result.error for every failure,
  // admission errors included), the model's configured name and the prompt's length and last id.
  DecodeResult result;
  std::string model;
  int32_t prompt_tokens = 0;
  int32_t prompt_last = -1;
};

struct WorkerOptions {
  std::map<std::string, std::unique_ptr<engine::Model>> models;  // name → loaded model
  std::map<std::string, std::string> devices;  // name → "auto", "cpu", "cuda", "cuda:N" (absent: auto)
  std::map<std::string, uint64_t> device_memory;  // name → its device pool in bytes (absent or 0: estimated)
  std::string default_model;
  std::vector<std::string> plugin_dirs;
  int threads = 1;
  int32_t max_concurrent = 32;
  int32_t max_queued = 256;
  uint64_t kv_bytes = uint64_t{1} << 30;  // shared evenly by the models' KV caches
  uint64_t plugin_bytes = uint64_t{4} << 30;  // each model's decoders' own (RuntimeLimits::plugin_bytes)
  SideFilePolicy side_files;               // dirs empty: each model's own defaults
};

struct DecoderSnapshot {
  std::string name, version, description, path;
  std::string details_json;  // daemon/decoder_catalog.h's object
};

// What StatusRequest reports, refreshed by the engine thread after every step.
// Where one model runs and what its backend holds.
struct ModelDeviceSnapshot {
  std::string model, device;
  uint64_t memory_used = 0, memory_total = 0;
  int32_t kv_blocks_total = 0, kv_blocks_free = 0, kv_blocks_reserved = 0;  // its own KV cache
};

struct EngineSnapshot {
  int32_t active = 0;
  int32_t queued = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_free = 0;
  int32_t kv_blocks_reserved = 0;  // promised to admitted sequences (DecodeRuntime::kv_reserved_blocks)
  uint64_t kv_bytes_per_block = 0;
  std::vector<DecoderSnapshot> decoders;
  std::vector<ModelDeviceSnapshot> devices;  // one per model
};

class EngineWorker {
 public:
  // Loads the plugin dirs (refusals printed to stderr), builds one runtime per model and starts
  // the engine thread. wake(user) is called from the engine thread after events were queued.
  static Result<std::unique_ptr<EngineWorker>> start(WorkerOptions opts, void (*wake)(void*), void* user);
  ~EngineWorker();  // cancels what is left, stops and joins the engine thread
  EngineWorker(const EngineWorker&) = delete;
  EngineWorker& operator=(const EngineWorker&) = delete;

  // Loop thread: queue a request. Errors: SPECD_E_LIMIT when max_concurrent + max_queued
  // requests are already outstanding, SPECD_E_CANCELED once stop_admission() was called.
  Status submit(GenerateJob job);
  void cancel(RequestKey key);              // unknown keys are ignored
  void cancel_connection(uint64_t conn);    // every request of a closed connection
  void cancel_all();                        // the end of a drain
  void stop_admission();                    // later submits fail with SPECD_E_CANCELED
  void rescan_plugins();                    // between steps: load decoders added to the plugin dirs
  bool take_rescanned();                    // true once per finished rescan (the loop is woken then)
  // Move every queued event into *out (appended in order).
  void take_events(std::vector<EngineEvent>* out);
  // Hand events back once they are handled, and clear *used: the engine thread refills Tokens events
  // from them (their buffers keep their capacity), so a steady stream of steps allocates none.
  void recycle_events(std::vector<EngineEvent>* used);
  EngineSnapshot snapshot() const;
  int32_t outstanding() const;              // submitted and not yet Finished
  // False when requests are outstanding and the engine thread has not finished a loop iteration
  // within max_ms: a hung step (for the systemd watchdog, which then stops getting pings).
  bool responsive(double max_ms) const;
  // Empty while every model's device works; else which model lost its device (a sticky device error:
  // its requests failed with SPECD_E_DEVICE and it cannot run more). The daemon then exits non-zero.
  std::string device_lost() const;

  // Immutable after start, so any thread may read them.
  const std::map<std::string, std::unique_ptr<engine::Model>>& models() const;
  const std::string& default_model() const;
  // The longest prompt the default model takes on an idle engine: its context or its share of
  // kv_bytes, whichever holds fewer positions, less one for a generated token.
  int32_t max_prompt_tokens() const;

 private:
  EngineWorker();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specd::daemon
