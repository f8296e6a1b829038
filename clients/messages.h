// The client's C++ view of the wire messages (abi/specd/protocol.fbs): what it sends and what it keeps.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace specd::clients {

// The protocol version this client speaks (Hello.protocol_version).
inline constexpr uint32_t kProtocolVersion = 1;

struct Sampling {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct GenerateRequest {
  std::string model;
  std::string prompt_text;
  std::vector<int32_t> prompt_ids;  // sent only when non-empty
  int32_t max_tokens = 128;
  Sampling sampling;
  std::vector<std::string> stop_strings;
  std::string decoder;
  std::string decoder_options_json;
  bool stream = true;
  bool keep_stop = false;
  std::vector<ChatMessage> messages;  // non-empty: a conversation instead of a prompt (sent only then)
};

struct Welcome {
  uint32_t protocol_version = 0;
  std::string daemon_version;
  uint32_t max_frame_bytes = 0;  // the daemon's limit on frames it receives; 0: not announced
  int32_t max_tokens = 0;
  int32_t max_prompt_tokens = 0;
};

// One TokenEvent, borrowed from the frame that carried it (valid while that frame is dispatched).
struct TokenEventView {
  std::span<const int32_t> ids;
  std::string_view text;  // NUL-terminated in the frame
  uint32_t step = 0;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t forwards = 0;
  double tokens_per_forward = 0.0;
  std::vector<int32_t> accepted_hist;
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;
};

struct Finished {
  std::string reason;
  std::vector<int32_t> token_ids;
  std::string text;
  Usage usage;
  int64_t run_id = 0;
};

struct WeightTypeShare {
  std::string type;
  uint64_t parameters = 0;
  uint64_t bytes = 0;
};

struct ModelInfo {
  std::string name;
  std::string path;
  int32_t vocab = 0;
  int32_t ctx_len = 0;
  uint64_t weight_bytes = 0;
  std::string device;                // "cpu", "cuda:0"; empty from a daemon that does not say
  uint64_t device_memory_used = 0;   // bytes the model's backend holds
  uint64_t device_memory_total = 0;  // the device pool's size; 0 on the CPU
  std::string architecture;          // the rest: "" and 0 from a daemon older than protocol 0.3
  uint64_t parameters = 0;
  uint64_t file_bytes = 0;
  std::vector<WeightTypeShare> weight_types;
  bool chat_template = false;
  bool is_default = false;
  int32_t kv_blocks_total = 0;       // its own KV cache; 0 from a daemon before these fields
  int32_t kv_blocks_free = 0;
  int32_t kv_blocks_reserved = 0;    // promised to admitted requests
};

struct DecoderInfo {
  std::string name;
  std::string version;
  std::string description;
  std::string path;
  std::string details_json;  // "" from a daemon before protocol 1.2
};

struct StatusInfo {
  std::string daemon_version;
  double uptime_s = 0.0;
  std::vector<ModelInfo> models;
  std::vector<DecoderInfo> decoders;
  int32_t active_requests = 0;
  int32_t queued_requests = 0;
  int32_t connections = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_free = 0;
  uint64_t kv_bytes_per_block = 0;
  int32_t kv_blocks_reserved = 0;
};

struct RunsQuery {
  int32_t last = 20;
  std::string decoder;
  std::string model;
  int64_t since_unix_ms = 0;
};

struct RunRecord {
  int64_t id = 0;
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  int32_t peer_uid = 0;
  int32_t peer_pid = 0;
  std::string model;
  std::string decoder;
  std::string decoder_options;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t forwards = 0;
  std::string accepted_hist;
  double ttft_ms = 0.0;
  double decode_tok_s = 0.0;
  std::string finish_reason;
  std::string error;
  std::string auto_settings;  // JSON object; empty from a daemon older than the field
  std::string via;            // "socket" or "http"; empty from a daemon older than the field
};

struct RunList {
  std::vector<RunRecord> runs;
  uint64_t dropped_log_entries = 0;
};

}  // namespace specd::clients
