// Results handed to C (specd_gen_result, specd_status, specd_runs) and their boxes: see
// clients/client_c_results.h.
#include "clients/client_c_results.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace specd::clients {

namespace {

struct WeightTypeBox {
  specd_status_weight_type pub;
  std::string type;
};

struct ModelBox {
  specd_status_model pub;
  std::string name;
  std::string path;
  std::string device;
  std::string architecture;
  std::vector<WeightTypeBox> types;
  std::vector<const specd_status_weight_type*> type_ptrs;
};

struct DecoderBox {
  specd_status_decoder pub;
  std::string name;
  std::string version;
  std::string description;
  std::string path;
  std::string details_json;
};

struct StatusBox {
  specd_status pub;
  std::string daemon_version;
  std::vector<ModelBox> models;
  std::vector<const specd_status_model*> model_ptrs;
  std::vector<DecoderBox> decoders;
  std::vector<const specd_status_decoder*> decoder_ptrs;
};

struct RunBox {
  specd_run pub;
  RunRecord rec;
};

struct RunsBox {
  specd_runs pub;
  std::vector<RunBox> runs;
  std::vector<const specd_run*> run_ptrs;
};

template <class Box>
constexpr bool kBoxLayoutOk = std::is_standard_layout_v<Box> && offsetof(Box, pub) == 0;
static_assert(kBoxLayoutOk<GenResultBox> && kBoxLayoutOk<StatusBox> && kBoxLayoutOk<RunsBox> &&
                  kBoxLayoutOk<ModelBox> && kBoxLayoutOk<DecoderBox> && kBoxLayoutOk<RunBox> &&
                  kBoxLayoutOk<WeightTypeBox>,
              "a box must convert to and from its public struct");

int32_t finish_reason_code(const std::string& reason) {
  if (reason == "length") return SPECD_FINISH_LENGTH;
  if (reason == "stop") return SPECD_FINISH_STOP;
  if (reason == "decoder") return SPECD_FINISH_DECODER;
  if (reason == "context") return SPECD_FINISH_CONTEXT;
  if (reason == "cancel") return SPECD_FINISH_CANCEL;
  if (reason == "error") return SPECD_FINISH_ERROR;
  return 0;
}

const int32_t* ids_or_empty(const std::vector<int32_t>& v) { return v.empty() ? kNoIds : v.data(); }


// The 1.2 fields of a model: architecture, parameters, file size, weight types, flags, KV blocks.
void link_model_summary(ModelBox* m, ModelInfo info) {
  m->architecture = std::move(info.architecture);
  m->pub.architecture = m->architecture.c_str();
  m->pub.parameters = info.parameters;
  m->pub.file_bytes = info.file_bytes;
  m->types = std::vector<WeightTypeBox>(info.weight_types.size());
  for (size_t i = 0; i < info.weight_types.size(); ++i) {
    WeightTypeBox& t = m->types[i];
    t.type = std::move(info.weight_types[i].type);
    t.pub = specd_status_weight_type{sizeof(specd_status_weight_type), t.type.c_str(), info.weight_types[i].parameters,
                                     info.weight_types[i].bytes};
    m->type_ptrs.push_back(&t.pub);
  }
  m->pub.weight_types = m->type_ptrs.data();
  m->pub.n_weight_types = m->type_ptrs.size();
  m->pub.flags = (info.chat_template ? SPECD_MODEL_CHAT_TEMPLATE : 0u) | (info.is_default ? SPECD_MODEL_DEFAULT : 0u);
  m->pub.kv_blocks_total = info.kv_blocks_total;
  m->pub.kv_blocks_free = info.kv_blocks_free;
  m->pub.kv_blocks_reserved = info.kv_blocks_reserved;
}


void link_run(RunBox* b) {
  const RunRecord& r = b->rec;
  specd_run& p = b->pub;
  p = specd_run{};
  p.struct_size = sizeof p;
  p.peer_uid = r.peer_uid;
  p.id = r.id;
  p.started_unix_ms = r.started_unix_ms;
  p.finished_unix_ms = r.finished_unix_ms;
  p.peer_pid = r.peer_pid;
  p.prompt_tokens = r.prompt_tokens;
  p.model = r.model.c_str();
  p.decoder = r.decoder.c_str();
  p.decoder_options = r.decoder_options.c_str();
  p.generated_tokens = r.generated_tokens;
  p.forwards = r.forwards;
  p.accepted_hist = r.accepted_hist.c_str();
  p.ttft_ms = r.ttft_ms;
  p.decode_tok_s = r.decode_tok_s;
  p.finish_reason = r.finish_reason.c_str();
  p.error = r.error.c_str();
  p.auto_settings = r.auto_settings.c_str();
  p.via = r.via.c_str();
}


// Back from a public pointer to the box that owns it, and destroy the box (NULL is ignored).
template <class Box, class Pub>
void destroy_box(Pub* p) {
  std::unique_ptr<Box> owned(reinterpret_cast<Box*>(p));
}

}  // namespace

void fill_gen_result(GenResultBox* b, const Finished& f) {
  b->ids = f.token_ids;
  b->text = f.text;
  b->reason = f.reason;
  b->hist = f.usage.accepted_hist;
  specd_gen_result& r = b->pub;
  r = specd_gen_result{};
  r.struct_size = sizeof r;
  r.finish_reason = finish_reason_code(b->reason);
  r.finish_reason_name = b->reason.c_str();
  r.token_ids = ids_or_empty(b->ids);
  r.n_tokens = b->ids.size();
  r.text = b->text.c_str();
  r.text_len = b->text.size();
  r.prompt_tokens = f.usage.prompt_tokens;
  r.generated_tokens = f.usage.generated_tokens;
  r.forwards = f.usage.forwards;
  r.tokens_per_forward = f.usage.tokens_per_forward;
  r.ttft_ms = f.usage.ttft_ms;
  r.decode_tok_s = f.usage.decode_tok_s;
  r.run_id = f.run_id;
  r.accepted_hist = ids_or_empty(b->hist);
  r.n_accepted_hist = b->hist.size();
}

specd_status* make_status(StatusInfo info) {
  auto box = std::make_unique<StatusBox>();
  box->daemon_version = std::move(info.daemon_version);
  box->models = std::vector<ModelBox>(info.models.size());
  for (size_t i = 0; i < info.models.size(); ++i) {
    ModelBox& m = box->models[i];
    m.name = std::move(info.models[i].name);
    m.path = std::move(info.models[i].path);
    m.device = std::move(info.models[i].device);
    m.pub = specd_status_model{};
    m.pub.struct_size = sizeof m.pub;
    m.pub.vocab = info.models[i].vocab;
    m.pub.name = m.name.c_str();
    m.pub.path = m.path.c_str();
    m.pub.ctx_len = info.models[i].ctx_len;
    m.pub.weight_bytes = info.models[i].weight_bytes;
    m.pub.device = m.device.c_str();
    m.pub.device_memory_used = info.models[i].device_memory_used;
    m.pub.device_memory_total = info.models[i].device_memory_total;
    link_model_summary(&m, std::move(info.models[i]));
    box->model_ptrs.push_back(&m.pub);
  }
  box->decoders = std::vector<DecoderBox>(info.decoders.size());
  for (size_t i = 0; i < info.decoders.size(); ++i) {
    DecoderBox& d = box->decoders[i];
    d.name = std::move(info.decoders[i].name);
    d.version = std::move(info.decoders[i].version);
    d.description = std::move(info.decoders[i].description);
    d.path = std::move(info.decoders[i].path);
    d.details_json = std::move(info.decoders[i].details_json);
    d.pub = specd_status_decoder{sizeof(specd_status_decoder), d.name.c_str(), d.version.c_str(),
                                 d.description.c_str(), d.path.c_str(), d.details_json.c_str()};
    box->decoder_ptrs.push_back(&d.pub);
  }
  specd_status& s = box->pub;
  s = specd_status{};
  s.struct_size = sizeof s;
  s.active_requests = info.active_requests;
  s.daemon_version = box->daemon_version.c_str();
  s.uptime_s = info.uptime_s;
  s.models = box->model_ptrs.data();
  s.n_models = box->model_ptrs.size();
  s.decoders = box->decoder_ptrs.data();
  s.n_decoders = box->decoder_ptrs.size();
  s.queued_requests = info.queued_requests;
  s.connections = info.connections;
  s.kv_blocks_total = info.kv_blocks_total;
  s.kv_blocks_free = info.kv_blocks_free;
  s.kv_bytes_per_block = info.kv_bytes_per_block;
  s.kv_blocks_reserved = info.kv_blocks_reserved;
  return &box.release()->pub;
}

specd_runs* make_runs(RunList list) {
  auto box = std::make_unique<RunsBox>();
  box->runs = std::vector<RunBox>(list.runs.size());
  for (size_t i = 0; i < list.runs.size(); ++i) {
    box->runs[i].rec = std::move(list.runs[i]);
    link_run(&box->runs[i]);
    box->run_ptrs.push_back(&box->runs[i].pub);
  }
  specd_runs& r = box->pub;
  r = specd_runs{};
  r.struct_size = sizeof r;
  r.runs = box->run_ptrs.data();
  r.n_runs = box->run_ptrs.size();
  r.dropped_log_entries = list.dropped_log_entries;
  return &box.release()->pub;
}

void free_gen_result(specd_gen_result* r) { destroy_box<GenResultBox>(r); }
void free_status(specd_status* s) { destroy_box<StatusBox>(s); }
void free_runs(specd_runs* r) { destroy_box<RunsBox>(r); }

}  // namespace specd::clients
