// DecodeRuntime: admission, the plan → forward → accept step, plugin checks and retirement.
#include "daemon/decode_runtime.h"

#include "daemon/cost_calibration.h"
#include "daemon/plugin_host.h"
#include "daemon/sequence_state.h"
#include "daemon/stop_strings.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace specd::daemon {
namespace {

constexpr size_t kStepTextBytes = 1024;

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

engine::KvCacheOptions kv_options(const RuntimeLimits& l) {
  engine::KvCacheOptions o;
  o.max_seqs = l.max_sequences;
  o.max_bytes = l.kv_bytes;
  return o;
}

}  // namespace

const char* finish_reason_name(int32_t reason) {
  switch (reason) {
    case SPECD_FINISH_LENGTH: return "length";
    case SPECD_FINISH_STOP: return "stop";
    case SPECD_FINISH_DECODER: return "decoder";
    case SPECD_FINISH_CONTEXT: return "context";
    case SPECD_FINISH_CANCEL: return "cancel";
    case SPECD_FINISH_ERROR: return "error";
    default: return "running";
  }
}

std::string settings_json(const DecodeResult& result) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const SettingCount& c : result.settings) j[c.label] = c.steps;
  return j.dump();
}

DecodeRuntime::DecodeRuntime(const engine::Model& model, const PluginRegistry& plugins, kernels::ThreadPool& pool,
                             RuntimeLimits limits, const engine::ModelWeights* weights)
    : model_(model),
      plugins_(plugins),
      pool_(pool),
      limits_(limits),
      kv_(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len, kv_options(limits)),
      fwd_(model, kv_, pool, weights),
      batch_(256),
      sampler_(model.config().vocab),
      side_files_(limits.side_files.dirs.empty() ? default_side_file_dirs(model.path()) : limits.side_files.dirs,
                  limits.side_files.max_bytes) {
  const auto& c = model.config();
  info_.struct_size = sizeof(info_);
  info_.vocab = c.vocab;
  info_.dim = c.dim;
  info_.n_layers = c.n_layers;
  info_.ctx_len = std::min(c.ctx_len, kv_.n_blocks() * kv_.block_tokens());
  info_.bos_id = c.bos;
  info_.eos_id = c.eos;
  info_.mask_id = c.mask;
  info_.logit_shift = c.logit_shift;
  info_.arch = c.arch.c_str();
  info_.path = model.path().c_str();
  info_.digest = model.digest().c_str();
  info_.max_rows = limits.max_rows_per_seq;
  seqs_.reserve(static_cast<size_t>(limits.max_sequences));
  planned_.reserve(static_cast<size_t>(limits.max_sequences));
  calibrate();
}

void* DecodeRuntime::decoder_memory(const std::string& decoder, size_t size) {
  std::vector<unsigned char>& block = decoder_memory_[decoder];
  if (block.size() != size) block.assign(size, 0);
  return block.data();
}

void DecodeRuntime::calibrate() {
  const char* env = std::getenv("SPECD_COST_CALIBRATION");
  if (!limits_.calibrate_cost || (env && std::string_view(env) == "off")) return;
  const CalibrationKey key{model_.digest(), fwd_.backend().name(), pool_.size()};
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  calibrate_cost(cost_, key, [this](int32_t rows) { return time_forward(rows); }, CalibrationOptions{}, now);
}

// One forward of rows causal rows, all with logits, on a scratch sequence (before any request runs,
// so the batch and the forward's outputs are free). Returns seconds, 0 when it cannot run.
double DecodeRuntime::time_forward(int32_t rows) {
  if (rows < 1 || rows >= info_.ctx_len || rows > limits_.max_rows_per_seq) return 0.0;
  auto seq = kv_.create_seq();
  if (!seq) return 0.0;
  const int32_t token = model_.config().bos >= 0 ? model_.config().bos : 0;
  batch_.clear();
  for (int32_t i = 0; i < rows; ++i) batch_.add_causal(*seq, token, i, engine::ROW_WANT_LOGITS);
  const auto t0 = Clock::now();
  const bool ok = fwd_.run(batch_).has_value();
  const double seconds = ms_since(t0) / 1000.0;
  batch_.clear();
  kv_.free_seq(*seq);
  return ok ? seconds : 0.0;
}

DecodeRuntime::~DecodeRuntime() {
  for (auto& s : seqs_) release(s.get());
  seqs_.clear();  // their hosts free forgotten plugin buffers on the backend, before it goes
  for (auto& [host, dev] : device_weights_) fwd_.backend().free(const_cast<void*>(dev.data));
}

Result<kernels::WeightView> DecodeRuntime::device_weight(const kernels::WeightView& host) {
  kernels::Backend& be = fwd_.backend();
  if (be.host_memory()) return host;
  if (auto it = device_weights_.find(host.data); it != device_weights_.end()) return it->second;
  auto dev = be.upload_weight(host);
  if (!dev) return dev.error();
  device_weights_.emplace(host.data, *dev);
  return dev;
}

Result<int64_t> DecodeRuntime::submit(DecodeRequest req, DecodeCallbacks cb) {
  const auto& c = model_.config();
  if (req.prompt.empty()) return make_error(SPECD_E_INVALID_ARG, "empty prompt");
  if (req.max_tokens < 1) return make_error(SPECD_E_INVALID_ARG, "max_tokens must be at least 1");
  for (int32_t t : req.prompt)
    if (t < 0 || t >= c.vocab) return make_error(SPECD_E_BAD_TOKEN, "prompt token id %d out of range [0, %d)", t, c.vocab);
  if (static_cast<int64_t>(req.prompt.size()) >= context_limit())
    return make_error(SPECD_E_CONTEXT,
                      "prompt of %zu tokens needs at least %zu positions; a sequence can hold %d (the model's context "
                      "is %d, the KV cache %d blocks of %d tokens in limits.kv_bytes)",
                      req.prompt.size(), req.prompt.size() + 1, context_limit(), c.ctx_len, kv_.n_blocks(),
                      kv_.block_tokens());
  const LoadedDecoder* dec = plugins_.find(req.decoder);
  if (!dec) {
    std::string names;
    for (const LoadedDecoder* d : plugins_.list()) names += (names.empty() ? "" : ", ") + d->name;
    return make_error(SPECD_E_UNKNOWN_DECODER, "unknown decoder '%s' (loaded: %s)", req.decoder.c_str(),
                      names.empty() ? "none" : names.c_str());
  }
  if (seqs_.size() >= static_cast<size_t>(limits_.max_sequences))
    return make_error(SPECD_E_LIMIT, "too many active sequences (limit %d)", limits_.max_sequences);
  const int32_t need = kv_blocks_for(req);
  if (kv_reserved_ + need > kv_.n_blocks())
    return make_error(SPECD_E_KV_FULL, "the request needs %d KV blocks; %d of the cache's %d are reserved by running requests",
                      need, kv_reserved_, kv_.n_blocks());

  auto s = std::make_unique<specd_seq>();
  s->rt = this;
  s->id = next_id_++;
  s->cb = cb;
  s->host.rt = this;
  s->host.decoder = dec;
  s->host.seq = s.get();
  s->batch_handle.seq = s.get();
  s->outputs_handle.seq = s.get();
  s->sampling = {sizeof(specd_sampling), req.sampling.temperature, req.sampling.top_k, req.sampling.top_p,
                 req.sampling.min_p, req.sampling.seed};
  s->rng.reseed(req.sampling.seed);
  s->tokens = req.prompt;
  s->tokens.reserve(req.prompt.size() + static_cast<size_t>(req.max_tokens));
  s->prompt_len = static_cast<int32_t>(req.prompt.size());
  s->result.tokens.reserve(static_cast<size_t>(req.max_tokens));
  s->result.emitted_hist.reserve(static_cast<size_t>(limits_.max_rows_per_seq) + 1);  // grows in accept
  s->commit_rows.reserve(static_cast<size_t>(limits_.max_rows_per_seq));
  s->result.settings.reserve(kMaxSettings);  // seq_note_setting never allocates
  // One step's text (without stop strings only that is kept): room for a long accepted run, so a
  // decoder that emits more tokens in a step than it did before (auto's longer drafts) does not grow it.
  s->text.reserve(kStepTextBytes);
  if (model_.config().mask >= 0) s->masked_logits.reserve(static_cast<size_t>(model_.config().vocab));
  s->t_submit = req.arrived != Clock::time_point{} ? req.arrived : Clock::now();
  auto options = parse_decoder_options(req.options_json);
  if (!options) return options.error();
  s->host.options = std::move(options.value());
  s->req = std::move(req);

  s->host.phase = Phase::Create;
  const int rc = dec->desc->create(host_api(limits_.host_abi_minor), &s->host, &info_, s->req.options_json.c_str(),
                                   &s->instance);
  s->host.phase = Phase::Idle;
  if (rc != SPECD_OK) {
    return Error{rc, !s->host.error.empty() ? s->host.error
                                            : "decoder '" + dec->name + "' refused the request: " + error_string(rc)};
  }
  for (auto& [key, value] : s->host.options.items()) {
    if (!s->host.read_options.count(key)) {
      dec->desc->destroy(s->instance);
      return make_error(SPECD_E_BAD_OPTION, "unknown option '%s' for decoder '%s'", key.c_str(), dec->name.c_str());
    }
  }
  auto kv_seq = kv_.create_seq();
  if (!kv_seq) {
    dec->desc->destroy(s->instance);
    return kv_seq.error();
  }
  s->kv_seq = *kv_seq;
  s->kv_quota_blocks = need;  // given back in release()
  kv_reserved_ += need;
  const int brc = dec->desc->begin(s->instance, s.get());
  s->begun = true;
  if (brc != SPECD_OK) {
    Error e{brc, s->fail_message.empty() ? "decoder '" + dec->name + "' failed to begin: " + error_string(brc)
                                         : s->fail_message};
    release(s.get());
    return e;
  }
  const int64_t id = s->id;
  seqs_.push_back(std::move(s));
  return id;
}

// KV reservations. Only committed rows take KV blocks (a step's other rows, drafts included, live
// in the forward's scratch and are dropped after accept), and every decoder commits the rows of
// tokens that are in its sequence: at most prompt + max_tokens positions, or context_limit().
// A sequence reserves those blocks at admission and no running sequence ever holds more than its
// reservation (commit_room cuts a commit at it), and the reservations never add up to more than
// the arena. So a running request's reserve_one never meets a full cache, whatever the others do.
// The one place a decoder can pass its reservation is the step that reaches max_tokens (it
// commits accepted drafts before emit() trims them); those rows are never read, so the commit is
// cut and the sequence must finish in that step, or it fails alone with SPECD_E_KV_FULL.
int32_t DecodeRuntime::kv_blocks_for(const DecodeRequest& req) const {
  const int64_t want = static_cast<int64_t>(req.prompt.size()) + req.max_tokens;
  const int64_t positions = std::min<int64_t>(want, context_limit());
  return static_cast<int32_t>((positions + kv_.block_tokens() - 1) / kv_.block_tokens());
}

DecodeRuntime::Admission DecodeRuntime::admission(const DecodeRequest& req) const {
  if (req.prompt.empty() || req.max_tokens < 1 || static_cast<int64_t>(req.prompt.size()) >= context_limit())
    return Admission::Refuse;
  const bool full =
      seqs_.size() >= static_cast<size_t>(limits_.max_sequences) || kv_reserved_ + kv_blocks_for(req) > kv_.n_blocks();
  return full ? Admission::Wait : Admission::Now;
}

int32_t DecodeRuntime::commit_room(specd_seq* s, int32_t n) {
  const int32_t room = s->kv_quota_blocks * kv_.block_tokens() - kv_.length(s->kv_seq);
  if (n <= room) return n;
  s->over_quota = true;
  return std::max(0, room);
}

void DecodeRuntime::cancel(int64_t id) {
  for (auto& s : seqs_)
    if (s->id == id) finish(s.get(), SPECD_FINISH_CANCEL);
}

void DecodeRuntime::finish(specd_seq* s, int32_t reason) {
  if (s->result.finish_reason == 0) s->result.finish_reason = reason;
}

bool DecodeRuntime::reserve_plugin_bytes(size_t n) {
  size_t cur = plugin_bytes_.load(std::memory_order_relaxed);
  do {
    if (n > limits_.plugin_bytes || cur > limits_.plugin_bytes - n) {
      // The decoder sees only NULL or SPECD_E_NOMEM: the log says which setting refused it.
      std::fprintf(stderr, "specd: [warn] decoder memory: refused %zu bytes (limits.plugin_bytes is %zu, %zu in use)\n", n,
                   limits_.plugin_bytes, cur);
      return false;
    }
  } while (!plugin_bytes_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
  return true;
}

void DecodeRuntime::fail(specd_seq* s, int32_t code, std::string message) {
  if (s->result.finish_reason != 0) return;
  s->result.finish_reason = SPECD_FINISH_ERROR;
  s->result.error = Error{code, std::move(message)};
}

void DecodeRuntime::check_slot(specd_seq* s, int rc, const char* slot, double ms) {
  if (rc != SPECD_OK)
    fail(s, rc, s->fail_message.empty() ? "decoder '" + s->host.decoder->name + "' returned " + error_name(rc) +
                                              " from " + slot
                                        : s->fail_message);
  if (ms > limits_.max_decoder_ms)
    fail(s, SPECD_E_PLUGIN, "decoder '" + s->host.decoder->name + "' spent " + std::to_string(static_cast<int>(ms)) +
                                " ms in " + slot + " (limit " + std::to_string(static_cast<int>(limits_.max_decoder_ms)) +
                                " ms)");
}

void DecodeRuntime::plan_all() {
  batch_.clear();
  planned_.clear();
  for (auto& up : seqs_) {
    specd_seq* s = up.get();
    if (s->result.finish_reason != 0) continue;
    s->row_begin = batch_.size();
    s->row_count = 0;
    s->host.phase = Phase::Plan;
    const auto t0 = Clock::now();
    const int rc = s->host.decoder->desc->plan(s->instance, s, &s->batch_handle);
    s->host.phase = Phase::Idle;
    const double ms = ms_since(t0);
    s->decoder_seconds = ms / 1000.0;  // accept() adds its part
    check_slot(s, rc, "plan", ms);
    if (s->result.finish_reason == 0 && s->row_count == 0)
      fail(s, SPECD_E_PLUGIN, "decoder '" + s->host.decoder->name + "' planned no rows and did not finish");
    if (s->result.finish_reason == 0) planned_.push_back(s);
  }
}

void DecodeRuntime::accept_all() {
  for (specd_seq* s : planned_) {
    s->emitted_this_step = 0;
    s->committed_this_step = 0;
    // This step's forward is the sequence's last one from here on: step_cost in accept() (where
    // lopa chooses) must not count its own rows as other sequences'.
    s->last_rows = s->row_count;
    s->last_rows_step = steps_run_;
    s->host.phase = Phase::Accept;
    const auto t0 = Clock::now();
    const int rc = s->host.decoder->desc->accept(s->instance, s, &s->outputs_handle);
    s->host.phase = Phase::Idle;
    const double ms = ms_since(t0);
    s->decoder_seconds += ms / 1000.0;
    check_slot(s, rc, "accept", ms);
    if (s->over_quota && s->result.finish_reason == 0)
      fail(s, SPECD_E_KV_FULL, "decoder '" + s->host.decoder->name + "' committed past the " +
                                   std::to_string(s->kv_quota_blocks * kv_.block_tokens()) +
                                   " KV positions reserved for prompt + max_tokens and went on");
    s->over_quota = false;
    ++s->result.steps;
    if (s->result.tokens.size() == static_cast<size_t>(s->emitted_this_step)) {
      ++s->result.prefill_steps;  // the first token came from this step: prompt processing
      s->result.prefill_tokens = s->emitted_this_step;
    } else if (s->emitted_this_step > 0 || s->result.finish_reason == 0) {
      auto& h = s->result.emitted_hist;
      if (h.size() <= static_cast<size_t>(s->emitted_this_step)) h.resize(static_cast<size_t>(s->emitted_this_step) + 1);
      ++h[static_cast<size_t>(s->emitted_this_step)];
    }
    s->idle_steps = (s->emitted_this_step || s->committed_this_step) ? 0 : s->idle_steps + 1;
    if (s->idle_steps > limits_.max_idle_steps)
      fail(s, SPECD_E_PLUGIN, "decoder '" + s->host.decoder->name + "' made no progress in " +
                                  std::to_string(s->idle_steps) + " steps (no commit, no token)");
  }
}

void DecodeRuntime::step() {
  const auto t_step = Clock::now();
  ++steps_run_;
  plan_all();
  last_step_rows_ = batch_.size();
  if (batch_.size() > 0) {
    const auto t0 = Clock::now();
    Status st = fwd_.run(batch_);
    const double forward = ms_since(t0) / 1000.0;
    // Steps whose rows all want logits are what step_cost prices (verify rows; prefill chunks,
    // whose rows mostly skip the LM head, would read as cheap rows and are left out).
    const bool priced = st && batch_.n_outputs() == batch_.size();
    if (priced) cost_.observe(batch_.size(), forward);
    if (!st) {
      // Rows were checked as they were added, so this is an engine fault: fail the step's requests.
      for (specd_seq* s : planned_) fail(s, st.error().code, "forward failed: " + st.error().message);
      planned_.clear();
    }
    accept_all();
    if (priced) {  // the runtime's own share of the step: what is neither forward nor decoder
      double decoders = 0.0;
      for (const specd_seq* s : planned_) decoders += s->decoder_seconds;
      cost_.observe_overhead(ms_since(t_step) / 1000.0 - forward - decoders);
    }
  }
  retire_finished();
}

void DecodeRuntime::release(specd_seq* s) {
  if (s->begun && s->host.decoder->desc->end) s->host.decoder->desc->end(s->instance, s);
  if (s->instance || s->begun) s->host.decoder->desc->destroy(s->instance);
  s->instance = nullptr;
  s->begun = false;
  kv_.free_seq(s->kv_seq);
  s->kv_seq = -1;
  // A finished sequence's rows will not be in the next forward: step_cost must not price them as
  // other sequences' (the next request's first step saw the last one's rows on top of its own).
  if (s->last_rows_step == steps_run_) last_step_rows_ = std::max(0, last_step_rows_ - s->last_rows);
  s->last_rows_step = -1;
  kv_reserved_ -= s->kv_quota_blocks;
  s->kv_quota_blocks = 0;
}

void DecodeRuntime::retire_finished() {
  auto done = [](const std::unique_ptr<specd_seq>& s) { return s->result.finish_reason != 0; };
  if (std::none_of(seqs_.begin(), seqs_.end(), done)) return;
  std::vector<std::unique_ptr<specd_seq>> keep;
  keep.reserve(seqs_.capacity());
  for (auto& s : seqs_) {
    if (!done(s)) {
      keep.push_back(std::move(s));
      continue;
    }
    const auto now = Clock::now();
    if (s->result.tokens.empty()) s->t_first = now;
    s->result.prefill_seconds = std::chrono::duration<double>(s->t_first - s->t_submit).count();
    s->result.decode_seconds = std::chrono::duration<double>(now - s->t_first).count();
    release(s.get());
    if (s->cb.on_finished) s->cb.on_finished(s->id, s->result, s->cb.user);
  }
  seqs_.swap(keep);
}

int32_t DecodeRuntime::take_tokens(specd_seq* s, const int32_t* tokens, int32_t n) {
  int32_t taken = 0;
  const auto& tok = model_.tokenizer();
  const auto& stops = s->req.stop_strings;
  // Tokens are detokenized here and only here: the stop-string scan reads s->text and on_tokens gets
  // this call's part of it. Without stop strings only this call's text is kept (the capacity stays).
  const bool want_text = !stops.empty() || s->cb.on_tokens;
  if (stops.empty()) {
    s->text.clear();
    s->text_sent = 0;
  }
  StopMatch stop;
  while (taken < n && s->result.finish_reason == 0) {
    const int32_t t = tokens[taken++];
    if (s->result.tokens.empty()) s->t_first = Clock::now();
    const int32_t prev = s->tokens.back();
    s->tokens.push_back(t);
    s->result.tokens.push_back(t);
    const size_t old_size = s->text.size();
    if (want_text) s->text += tok.piece(prev, t);
    if (!stops.empty()) stop = find_stop(s->text, old_size, stops);
    if (std::find(s->req.stop_tokens.begin(), s->req.stop_tokens.end(), t) != s->req.stop_tokens.end() ||
        stop.found()) {
      finish(s, SPECD_FINISH_STOP);
    } else if (static_cast<int32_t>(s->result.tokens.size()) >= s->req.max_tokens) {
      finish(s, SPECD_FINISH_LENGTH);
    }
  }
  // What the client sees ends before a matched stop string (after it with keep_stop, and nothing the
  // token carried past it either way); while running, a tail that could still grow into a stop
  // string is held back for the next call. The stop's tokens stay in result.tokens.
  size_t shown = s->text.size();
  if (stop.found()) {
    shown = std::max(s->text_sent, stop.at + (s->req.keep_stop ? stop.length : 0));
  } else if (!stops.empty() && s->result.finish_reason == 0) {
    shown = std::max(s->text_sent, stop_safe_length(s->text, stops));
  }
  const size_t call_begin = s->text_sent;
  s->text_sent = shown;
  s->emitted_this_step += taken;
  if (taken > 0 && s->cb.on_tokens)
    s->cb.on_tokens(s->id, tokens, taken, std::string_view(s->text).substr(call_begin, shown - call_begin), s->cb.user);
  return taken;
}

Result<DecodeResult> DecodeRuntime::run(const DecodeRequest& req,
                                        void (*on_tokens)(int64_t, const int32_t*, int32_t, std::string_view, void*),
                                        void* user) {
  struct Out {
    DecodeResult r;
    bool done = false;
    void (*on_tokens)(int64_t, const int32_t*, int32_t, std::string_view, void*);
    void* user;
  } out{{}, false, on_tokens, user};
  DecodeCallbacks cb;
  if (on_tokens)
    cb.on_tokens = [](int64_t id, const int32_t* t, int32_t n, std::string_view text, void* u) {
      auto* o = static_cast<Out*>(u);
      o->on_tokens(id, t, n, text, o->user);
    };
  cb.on_finished = [](int64_t, const DecodeResult& r, void* u) {
    auto* o = static_cast<Out*>(u);
    o->r = r;
    o->done = true;
  };
  cb.user = &out;
  auto id = submit(req, cb);
  if (!id) return id.error();
  while (!out.done) step();
  return out.r;
}

}  // namespace specd::daemon
