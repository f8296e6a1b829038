// Decoders from verified FlatBuffer tables to the client's structs; absent fields read as their schema defaults.
#include "clients/message_decode.h"

#include <bit>

namespace specd::clients {
namespace {

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

std::vector<int32_t> ids(const flatbuffers::Vector<int32_t>* v) {
  return v ? std::vector<int32_t>(v->begin(), v->end()) : std::vector<int32_t>();
}

Usage decode_usage(const wire::Usage* u) {
  Usage out;
  if (!u) return out;
  out.prompt_tokens = u->prompt_tokens();
  out.generated_tokens = u->generated_tokens();
  out.forwards = u->forwards();
  out.tokens_per_forward = u->tokens_per_forward();
  out.accepted_hist = ids(u->accepted_hist());
  out.ttft_ms = u->ttft_ms();
  out.decode_tok_s = u->decode_tok_s();
  return out;
}

RunRecord decode_run(const wire::RunRecord& r) {
  RunRecord out;
  out.id = r.id();
  out.started_unix_ms = r.started_unix_ms();
  out.finished_unix_ms = r.finished_unix_ms();
  out.peer_uid = r.peer_uid();
  out.peer_pid = r.peer_pid();
  out.model = str(r.model());
  out.decoder = str(r.decoder());
  out.decoder_options = str(r.decoder_options());
  out.prompt_tokens = r.prompt_tokens();
  out.generated_tokens = r.generated_tokens();
  out.forwards = r.forwards();
  out.accepted_hist = str(r.accepted_hist());
  out.ttft_ms = r.ttft_ms();
  out.decode_tok_s = r.decode_tok_s();
  out.finish_reason = str(r.finish_reason());
  out.error = str(r.error());
  out.auto_settings = str(r.auto_settings());
  out.via = str(r.via());
  return out;
}

}  // namespace

Welcome decode_welcome(const wire::Welcome& w) {
  Welcome out;
  out.protocol_version = w.protocol_version();
  out.daemon_version = str(w.daemon_version());
  out.max_frame_bytes = w.max_frame_bytes();
  out.max_tokens = w.max_tokens();
  out.max_prompt_tokens = w.max_prompt_tokens();
  return out;
}

TokenEventView view_token_event(const wire::TokenEvent& ev) {
  // The ids are read in place: a FlatBuffer stores them little-endian and 4-byte aligned.
  static_assert(std::endian::native == std::endian::little, "token ids are borrowed from the frame as-is");
  TokenEventView out;
  if (const auto* v = ev.token_ids()) out.ids = std::span<const int32_t>(v->data(), v->size());
  if (const auto* t = ev.text()) out.text = std::string_view(t->c_str(), t->size());
  out.step = ev.step();
  return out;
}

Finished decode_finished(const wire::Finished& f) {
  Finished out;
  out.reason = str(f.reason());
  out.token_ids = ids(f.token_ids());
  out.text = str(f.text());
  out.usage = decode_usage(f.usage());
  out.run_id = f.run_id();
  return out;
}

StatusInfo decode_status(const wire::StatusReply& s) {
  StatusInfo out;
  out.daemon_version = str(s.daemon_version());
  out.uptime_s = s.uptime_s();
  if (const auto* models = s.models()) {
    for (const wire::ModelStatus* m : *models) {
      ModelInfo info{str(m->name()), str(m->path()), m->vocab(), m->ctx_len(), m->weight_bytes(), str(m->device()),
                     m->device_memory_used(), m->device_memory_total(), str(m->architecture()), m->parameters(),
                     m->file_bytes(), {}, m->chat_template(), m->is_default(), m->kv_blocks_total(),
                     m->kv_blocks_free(), m->kv_blocks_reserved()};
      if (const auto* types = m->weight_types())
        for (const wire::WeightTypeShare* t : *types) info.weight_types.push_back({str(t->type()), t->parameters(), t->bytes()});
      out.models.push_back(std::move(info));
    }
  }
  if (const auto* decoders = s.decoders()) {
    for (const wire::DecoderInfo* d : *decoders) {
      out.decoders.push_back(
          DecoderInfo{str(d->name()), str(d->version()), str(d->description()), str(d->path()), str(d->details_json())});
    }
  }
  out.active_requests = s.active_requests();
  out.queued_requests = s.queued_requests();
  out.connections = s.connections();
  out.kv_blocks_total = s.kv_blocks_total();
  out.kv_blocks_free = s.kv_blocks_free();
  out.kv_bytes_per_block = s.kv_bytes_per_block();
  out.kv_blocks_reserved = s.kv_blocks_reserved();
  return out;
}

RunList decode_run_list(const wire::RunList& r) {
  RunList out;
  if (const auto* runs = r.runs()) {
    out.runs.reserve(runs->size());
    for (const wire::RunRecord* run : *runs) out.runs.push_back(decode_run(*run));
  }
  out.dropped_log_entries = r.dropped_log_entries();
  return out;
}

Error decode_error(const wire::Error& e) {
  std::string message = str(e.message());
  if (message.empty()) message = str(e.name());
  if (e.code() >= 0) {
    return Error{SPECD_E_PROTOCOL, "the daemon sent an Error with code " + std::to_string(e.code()) +
                                       " (not a SPECD_E_* code): " + message};
  }
  return Error{e.code(), message};
}

const char* body_name(wire::Body type) {
  // The generated names table covers exactly the union members this build knows.
  const auto i = static_cast<size_t>(type);
  if (type > wire::Body::MAX) return "an unknown message";
  return wire::EnumNamesBody()[i];
}

}  // namespace specd::clients
