// The state behind the ABI's opaque handles: one specd_seq per request, one specd_host per instance.
//
// Only daemon/plugin_host.cpp (the ABI edge) and daemon/decode_runtime.cpp touch these.
#pragma once

#include "daemon/decode_request.h"
#include "daemon/plugin_loader.h"
#include "engine/batch.h"
#include "engine/gguf_reader.h"
#include "engine/sampler.h"

#include <specd/decoder.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace specd::daemon {
class DecodeRuntime;
enum class Phase { Idle, Create, Plan, Accept };
}  // namespace specd::daemon

struct specd_host {
  specd::daemon::DecodeRuntime* rt = nullptr;
  const specd::daemon::LoadedDecoder* decoder = nullptr;
  specd_seq* seq = nullptr;           // the sequence this instance decodes (step_cost's "own rows")
  nlohmann::json options;             // the request's decoder options (an object)
  std::set<std::string> read_options;  // keys the decoder asked for during create()
  std::deque<std::string> strings;    // storage for opt_string/meta_string results (stable addresses)
  std::vector<std::shared_ptr<const specd::engine::GgufFile>> attached;  // file_attach, in order
  std::string error;                  // the first bad option, reported if create() fails
  specd::daemon::Phase phase = specd::daemon::Phase::Idle;
  std::vector<specd_buf*> bufs;       // buffers from buf_create not yet destroyed (freed with the host)
  specd_host() = default;
  specd_host(const specd_host&) = delete;
  specd_host& operator=(const specd_host&) = delete;
  ~specd_host();
};

struct specd_batch {
  specd_seq* seq = nullptr;
};

struct specd_outputs {
  specd_seq* seq = nullptr;
};

struct specd_seq {
  specd::daemon::DecodeRuntime* rt = nullptr;
  int64_t id = 0;
  int32_t kv_seq = -1;
  int32_t kv_quota_blocks = 0;  // KV blocks reserved for this sequence at admission
  bool over_quota = false;      // a commit this step was cut at the reservation
  specd::daemon::DecodeRequest req;
  specd::daemon::DecodeCallbacks cb;
  specd_sampling sampling{};
  specd_host host;
  void* instance = nullptr;
  void* user = nullptr;
  specd_batch batch_handle;
  specd_outputs outputs_handle;

  std::vector<int32_t> tokens;  // prompt + emitted
  int32_t prompt_len = 0;
  std::string text;             // detokenized output (take_tokens): all of it with stop strings, else the last call's
  size_t text_sent = 0;         // bytes of text handed to on_tokens (the rest may be the start of a stop string)
  specd::engine::Rng rng;
  specd::daemon::DecodeResult result;

  // This step.
  int32_t row_begin = 0;        // global index of local row 0
  int32_t row_count = 0;
  int32_t emitted_this_step = 0;
  int32_t committed_this_step = 0;
  int32_t idle_steps = 0;       // consecutive steps with neither commit nor emit
  std::vector<int32_t> commit_rows;  // scratch: global indices
  std::vector<float> masked_logits;  // scratch: logits with MASK excluded (models with a MASK token)
  std::string fail_message;     // from api->fail, used when a slot returns an error
  int32_t last_rows = 0;        // rows of this sequence's last forward (the cost model's "others")
  int64_t last_rows_step = -1;  // the runtime's step that forward was (last_rows counts in its rows only then)
  double decoder_seconds = 0.0; // plan() + accept() of the last step (seq_decoder_cost)
  bool begun = false;
  std::chrono::steady_clock::time_point t_submit, t_first;
};
