// Encoders of Welcome, TokenEvent, Finished, StatusReply, RunList and Error frames.
#include "daemon/wire_encode.h"

#include "daemon/frame_codec.h"
#include "protocol_generated.h"

namespace specd::daemon {
namespace {

namespace fb = flatbuffers;

template <class T>
std::vector<uint8_t> finish_frame(fb::FlatBufferBuilder& b, uint64_t request_id, wire::Body type, fb::Offset<T> body) {
  b.Finish(wire::CreateEnvelope(b, request_id, type, body.Union()));
  return frame_bytes(std::span<const uint8_t>(b.GetBufferPointer(), b.GetSize()));
}

fb::Offset<fb::String> str(fb::FlatBufferBuilder& b, std::string_view s) { return b.CreateString(s.data(), s.size()); }

fb::Offset<wire::RunRecord> run_record(fb::FlatBufferBuilder& b, const RunRecord& r) {
  const auto model = str(b, r.model), decoder = str(b, r.decoder), options = str(b, r.decoder_options);
  const auto hist = str(b, r.accepted_hist), reason = str(b, r.finish_reason), error = str(b, r.error);
  const auto settings = str(b, r.auto_settings), via = str(b, r.via);
  return wire::CreateRunRecord(b, r.id, r.started_unix_ms, r.finished_unix_ms, r.peer_uid, r.peer_pid, model, decoder,
                               options, r.prompt_tokens, r.generated_tokens, r.forwards, hist, r.ttft_ms, r.decode_tok_s,
                               reason, error, settings, via);
}

}  // namespace

UsageFigures usage_of(const DecodeResult& r, int32_t prompt_tokens) {
  UsageFigures u;
  u.prompt_tokens = prompt_tokens;
  u.generated_tokens = static_cast<int32_t>(r.tokens.size());
  u.forwards = r.steps;
  u.tokens_per_forward = static_cast<float>(r.tokens_per_forward());
  u.ttft_ms = r.tokens.empty() ? 0.0 : r.prefill_seconds * 1e3;
  const int32_t decode_tokens = u.generated_tokens - r.prefill_tokens;
  if (r.decode_seconds > 0 && r.steps > r.prefill_steps) u.decode_tok_s = decode_tokens / r.decode_seconds;
  return u;
}

std::vector<uint8_t> encode_welcome(uint64_t request_id, const WelcomeInfo& w) {
  fb::FlatBufferBuilder b(256);
  const auto version = str(b, w.daemon_version);
  return finish_frame(b, request_id, wire::Body::Welcome,
                      wire::CreateWelcome(b, kProtocolVersion, version, w.max_frame_bytes, w.max_tokens, w.max_prompt_tokens));
}

std::vector<uint8_t> encode_token_event(uint64_t request_id, std::span<const int32_t> ids, std::string_view text,
                                        uint32_t step) {
  fb::FlatBufferBuilder b(128 + ids.size() * 4 + text.size());
  const auto v = b.CreateVector(ids.data(), ids.size());
  const auto t = str(b, text);
  return finish_frame(b, request_id, wire::Body::TokenEvent, wire::CreateTokenEvent(b, v, t, step));
}

std::vector<uint8_t> encode_finished(uint64_t request_id, const DecodeResult& r, int32_t prompt_tokens,
                                     std::string_view text, int64_t run_id) {
  fb::FlatBufferBuilder b(256 + r.tokens.size() * 4 + text.size());
  const UsageFigures u = usage_of(r, prompt_tokens);
  const auto hist = b.CreateVector(r.emitted_hist);
  const auto usage = wire::CreateUsage(b, u.prompt_tokens, u.generated_tokens, u.forwards, u.tokens_per_forward, hist,
                                       u.ttft_ms, u.decode_tok_s);
  const auto reason = str(b, finish_reason_name(r.finish_reason));
  const auto ids = b.CreateVector(r.tokens);
  const auto t = str(b, text);
  return finish_frame(b, request_id, wire::Body::Finished, wire::CreateFinished(b, reason, ids, t, usage, run_id));
}

std::vector<uint8_t> encode_status(uint64_t request_id, const StatusInfo& s) {
  fb::FlatBufferBuilder b(1024);
  std::vector<fb::Offset<wire::ModelStatus>> models;
  for (const auto& m : s.models) {
    const auto name = str(b, m.name), path = str(b, m.path), device = str(b, m.device);
    const auto arch = str(b, m.summary.architecture);
    std::vector<fb::Offset<wire::WeightTypeShare>> shares;
    for (const auto& t : m.summary.types) shares.push_back(wire::CreateWeightTypeShare(b, str(b, t.type), t.parameters, t.bytes));
    const auto types = b.CreateVector(shares);
    models.push_back(wire::CreateModelStatus(b, name, path, m.vocab, m.ctx_len, m.weight_bytes, device,
                                             m.device_memory_used, m.device_memory_total, arch, m.summary.parameters,
                                             m.summary.file_bytes, types, m.chat_template, m.is_default, m.kv_blocks_total,
                                             m.kv_blocks_free, m.kv_blocks_reserved));
  }
  std::vector<fb::Offset<wire::DecoderInfo>> decoders;
  for (const auto& d : s.engine.decoders) {
    const auto name = str(b, d.name), version = str(b, d.version), desc = str(b, d.description), path = str(b, d.path);
    const auto details = str(b, d.details_json);
    decoders.push_back(wire::CreateDecoderInfo(b, name, version, desc, path, details));
  }
  const auto version = str(b, s.daemon_version);
  const auto mv = b.CreateVector(models);
  const auto dv = b.CreateVector(decoders);
  const EngineSnapshot& e = s.engine;
  return finish_frame(b, request_id, wire::Body::StatusReply,
                      wire::CreateStatusReply(b, version, s.uptime_s, mv, dv, e.active, e.queued, s.connections,
                                              e.kv_blocks_total, e.kv_blocks_free, e.kv_bytes_per_block, e.kv_blocks_reserved));
}

std::vector<uint8_t> encode_run_list(uint64_t request_id, const std::vector<RunRecord>& runs, uint64_t dropped) {
  fb::FlatBufferBuilder b(256 + runs.size() * 256);
  std::vector<fb::Offset<wire::RunRecord>> records;
  records.reserve(runs.size());
  for (const auto& r : runs) records.push_back(run_record(b, r));
  const auto v = b.CreateVector(records);
  return finish_frame(b, request_id, wire::Body::RunList, wire::CreateRunList(b, v, dropped));
}

std::vector<uint8_t> encode_error(uint64_t request_id, int32_t code, std::string_view message) {
  fb::FlatBufferBuilder b(128 + message.size());
  const auto name = str(b, error_name(code));
  const auto msg = str(b, message);
  return finish_frame(b, request_id, wire::Body::Error, wire::CreateError(b, code, name, msg));
}

}  // namespace specd::daemon
