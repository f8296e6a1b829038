// Encoders of the daemon's outgoing messages (protocol.fbs): each returns one whole frame.
#pragma once

#include "daemon/decode_request.h"
#include "daemon/engine_worker.h"
#include "daemon/run_log.h"
#include "engine/model_summary.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace specd::daemon {

constexpr uint32_t kProtocolVersion = 1;

// The usage figures of one finished request, as Finished and the run log report them.
struct UsageFigures {
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t forwards = 0;
  float tokens_per_forward = 0.0f;
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;  // tokens after the first step(s) / the time after them (as `specd generate`)
};
UsageFigures usage_of(const DecodeResult& r, int32_t prompt_tokens);

struct WelcomeInfo {
  std::string daemon_version;
  uint32_t max_frame_bytes = 0;
  int32_t max_tokens = 0;
  int32_t max_prompt_tokens = 0;
};

struct ModelInfo {
  std::string name, path;
  int32_t vocab = 0, ctx_len = 0;
  uint64_t weight_bytes = 0;
  std::string device;                             // from the engine snapshot, as are the KV figures
  uint64_t device_memory_used = 0, device_memory_total = 0;
  engine::ModelSummary summary;                   // architecture, parameters, weight types, file size
  bool chat_template = false;                     // tokenizer.chat_template is present
  bool is_default = false;                        // the model a Generate naming none runs on
  int32_t kv_blocks_total = 0, kv_blocks_free = 0, kv_blocks_reserved = 0;
};

struct StatusInfo {
  std::string daemon_version;
  double uptime_s = 0.0;
  std::vector<ModelInfo> models;
  EngineSnapshot engine;
  int32_t connections = 0;
};

std::vector<uint8_t> encode_welcome(uint64_t request_id, const WelcomeInfo& w);
std::vector<uint8_t> encode_token_event(uint64_t request_id, std::span<const int32_t> ids, std::string_view text,
                                        uint32_t step);
std::vector<uint8_t> encode_finished(uint64_t request_id, const DecodeResult& r, int32_t prompt_tokens,
                                     std::string_view text, int64_t run_id);
std::vector<uint8_t> encode_status(uint64_t request_id, const StatusInfo& s);
std::vector<uint8_t> encode_run_list(uint64_t request_id, const std::vector<RunRecord>& runs, uint64_t dropped);
// code is a SPECD_E_* code; its name travels with it.
std::vector<uint8_t> encode_error(uint64_t request_id, int32_t code, std::string_view message);

}  // namespace specd::daemon
