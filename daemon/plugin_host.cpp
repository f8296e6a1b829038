// The ABI edge: every specd_host_api function, converting C calls into runtime operations.
//
// Each function checks its phase and arguments, never throws (C frames above), and turns a
// decoder's misuse into a failure of that decoder's own sequence.
#include "daemon/plugin_host.h"

#include "daemon/strict_json.h"

#include "daemon/decode_runtime.h"
#include "daemon/host_cost.h"
#include "daemon/host_files.h"
#include "daemon/host_tensor_ops.h"
#include "daemon/sequence_state.h"

#include <cmath>
#include <cstdarg>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <span>
#include <new>

namespace specd::daemon {
namespace {

using engine::Row;

std::string vformat(const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  return buf;
}

// A decoder's misuse: fail its sequence with SPECD_E_PLUGIN and return the code for the call.
int misuse(specd_seq* s, int code, const std::string& what) {
  s->rt->fail(s, SPECD_E_PLUGIN, "decoder '" + s->host.decoder->name + "': " + what);
  return code;
}

// Decoder memory is counted in its runtime's account (RuntimeLimits::plugin_bytes). Each block carries
// a 16-byte header with its size and runtime, so mem_free needs no table (and no h) to give the bytes
// back, and the block the decoder sees stays 16-byte aligned.
struct AllocHeader {
  size_t total;
  DecodeRuntime* rt;
};
static_assert(sizeof(AllocHeader) == 16);

void* h_alloc(specd_host* h, size_t n) {
  if (!h || !h->rt || n > std::numeric_limits<size_t>::max() - sizeof(AllocHeader) - 15) return nullptr;
  const size_t total = sizeof(AllocHeader) + (n + 15) / 16 * 16;
  if (!h->rt->reserve_plugin_bytes(total)) return nullptr;
  auto* base = static_cast<unsigned char*>(std::aligned_alloc(16, total));
  if (!base) {
    h->rt->release_plugin_bytes(total);
    return nullptr;
  }
  const AllocHeader head{total, h->rt};
  std::memcpy(base, &head, sizeof head);
  return base + sizeof(AllocHeader);
}
void h_free(specd_host*, void* p) {
  if (!p) return;
  unsigned char* base = static_cast<unsigned char*>(p) - sizeof(AllocHeader);
  AllocHeader head;
  std::memcpy(&head, base, sizeof head);
  head.rt->release_plugin_bytes(head.total);
  std::free(base);
}

// Debug lines are shown only with SPECD_LOG=debug; the rest always go to stderr (the journal).
void h_log(specd_host* h, int32_t level, const char* fmt, ...) {
  static const bool debug = [] {
    const char* e = std::getenv("SPECD_LOG");
    return e && std::string(e) == "debug";
  }();
  if (level <= SPECD_LOG_DEBUG && !debug) return;
  va_list ap;
  va_start(ap, fmt);
  const std::string msg = vformat(fmt, ap);
  va_end(ap);
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "specd: [%s] %s: %s\n", names[level < 0 || level > 3 ? 1 : level],
               h && h->decoder ? h->decoder->name.c_str() : "?", msg.c_str());
}

// The option's JSON value, marking the key as known; NULL when absent or outside create().
const nlohmann::json* option(specd_host* h, const char* key) {
  if (!h || !key || h->phase != Phase::Create) return nullptr;
  h->read_options.insert(key);
  auto it = h->options.find(key);
  return it == h->options.end() ? nullptr : &*it;
}

// str is exactly one number (from_chars: no blanks or '+' around it, nothing after it).
template <class T>
bool whole_number(const std::string& str, T* x) {
  const char* end = str.data() + str.size();
  const auto [p, ec] = std::from_chars(str.data(), end, *x);
  return ec == std::errc() && p == end && !str.empty();
}

int bad_option(specd_host* h, const char* key, const char* want) {
  if (h->error.empty())
    h->error = "decoder '" + h->decoder->name + "': option '" + key + "' must be " + want;
  return SPECD_E_BAD_OPTION;
}

int h_opt_int(specd_host* h, const char* key, int64_t def, int64_t lo, int64_t hi, int64_t* out) {
  if (!out || !h || h->phase != Phase::Create) return SPECD_E_INVALID_ARG;
  const nlohmann::json* v = option(h, key);
  *out = def;
  if (!v) return SPECD_OK;
  int64_t x;
  if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_string()) {  // --decoder-opt k=4 arrives as a string: digits only, no blanks
    if (!whole_number(v->get_ref<const std::string&>(), &x)) return bad_option(h, key, "an integer");
  } else {
    return bad_option(h, key, "an integer");
  }
  if (x < lo || x > hi) return bad_option(h, key, ("in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]").c_str());
  *out = x;
  return SPECD_OK;
}

int h_opt_float(specd_host* h, const char* key, double def, double lo, double hi, double* out) {
  if (!out || !h || h->phase != Phase::Create) return SPECD_E_INVALID_ARG;
  const nlohmann::json* v = option(h, key);
  *out = def;
  if (!v) return SPECD_OK;
  double x;
  if (v->is_number()) {
    x = v->get<double>();
  } else if (v->is_string()) {
    if (!whole_number(v->get_ref<const std::string&>(), &x)) return bad_option(h, key, "a number");
  } else {
    return bad_option(h, key, "a number");
  }
  if (!(x >= lo && x <= hi)) return bad_option(h, key, ("in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]").c_str());
  *out = x;
  return SPECD_OK;
}

int h_opt_string(specd_host* h, const char* key, const char* def, const char** out) {
  if (!out || !h || h->phase != Phase::Create) return SPECD_E_INVALID_ARG;
  const nlohmann::json* v = option(h, key);
  *out = def;
  if (!v) return SPECD_OK;
  if (!v->is_string()) return bad_option(h, key, "a string");
  *out = h->strings.emplace_back(v->get<std::string>()).c_str();
  return SPECD_OK;
}

int32_t h_seq_tokens(specd_seq* s, const int32_t** tokens) {
  if (tokens) *tokens = s->tokens.data();
  return static_cast<int32_t>(s->tokens.size());
}
int32_t h_seq_prompt_len(specd_seq* s) { return s->prompt_len; }
int32_t h_seq_kv_len(specd_seq* s) { return s->rt->kv().length(s->kv_seq); }
int32_t h_seq_remaining(specd_seq* s) {
  return s->req.max_tokens - static_cast<int32_t>(s->result.tokens.size());
}
const specd_sampling* h_seq_sampling(specd_seq* s) { return &s->sampling; }
void h_seq_set_user(specd_seq* s, void* user) { s->user = user; }
void* h_seq_user(specd_seq* s) { return s->user; }

int32_t h_row_add(specd_batch* b, int32_t token, int32_t pos, uint32_t flags) {
  specd_seq* s = b ? b->seq : nullptr;
  if (!s || s->host.phase != Phase::Plan) return SPECD_E_INVALID_ARG;
  const auto& c = s->rt->model().config();
  if (token < 0 || token >= c.vocab)
    return misuse(s, SPECD_E_BAD_TOKEN, "row token id " + std::to_string(token) + " out of range");
  const int32_t kv = s->rt->kv().length(s->kv_seq);
  const int32_t ctx = s->rt->context_limit();  // what the decoder was told as ctx_len
  if (pos < kv || pos >= ctx)
    return misuse(s, SPECD_E_CONTEXT, "row position " + std::to_string(pos) + " outside [" + std::to_string(kv) + ", " +
                                          std::to_string(ctx) + ")");
  if (s->row_count >= s->rt->limits().max_rows_per_seq)
    return misuse(s, SPECD_E_LIMIT, "more than " + std::to_string(s->rt->limits().max_rows_per_seq) + " rows in one step");
  uint32_t f = 0;
  if (flags & SPECD_ROW_LOGITS) f |= engine::ROW_WANT_LOGITS;
  if (flags & SPECD_ROW_HIDDEN) f |= engine::ROW_WANT_HIDDEN;
  s->rt->batch().add(s->kv_seq, token, pos, f);
  return s->row_count++;
}

int h_row_see(specd_batch* b, int32_t row, int32_t visible) {
  specd_seq* s = b ? b->seq : nullptr;
  if (!s || s->host.phase != Phase::Plan) return SPECD_E_INVALID_ARG;
  if (row < 0 || row >= s->row_count || visible < 0 || visible >= s->row_count)
    return misuse(s, SPECD_E_INVALID_ARG, "row_see(" + std::to_string(row) + ", " + std::to_string(visible) +
                                              ") with " + std::to_string(s->row_count) + " rows");
  s->rt->batch().see(s->row_begin + row, s->row_begin + visible);
  return SPECD_OK;
}

int h_row_see_all_before(specd_batch* b, int32_t row) {
  if (int rc = h_row_see(b, row, row); rc != SPECD_OK) return rc;  // validates row
  for (int32_t j = 0; j < row; ++j) b->seq->rt->batch().see(b->seq->row_begin + row, b->seq->row_begin + j);
  return SPECD_OK;
}

const float* output_row(const specd_outputs* o, int32_t row, uint32_t want, bool logits) {
  specd_seq* s = o ? o->seq : nullptr;
  if (!s || s->host.phase != Phase::Accept || row < 0 || row >= s->row_count) return nullptr;
  const Row& r = s->rt->batch().row(s->row_begin + row);
  if (r.out_index < 0 || !(r.flags & want)) return nullptr;
  return logits ? s->rt->forward().logits(r.out_index).data() : s->rt->forward().hidden(r.out_index).data();
}
const float* h_out_logits(const specd_outputs* o, int32_t row) { return output_row(o, row, engine::ROW_WANT_LOGITS, true); }
const float* h_out_hidden(const specd_outputs* o, int32_t row) { return output_row(o, row, engine::ROW_WANT_HIDDEN, false); }

int h_commit(specd_seq* s, const specd_outputs* o, const int32_t* rows, int32_t n) {
  if (!s || !o || o->seq != s || s->host.phase != Phase::Accept || n < 0 || (n > 0 && !rows)) return SPECD_E_INVALID_ARG;
  s->commit_rows.clear();
  for (int32_t i = 0; i < n; ++i) {
    if (rows[i] < 0 || rows[i] >= s->row_count)
      return misuse(s, SPECD_E_PLUGIN, "commit of row " + std::to_string(rows[i]) + " of " + std::to_string(s->row_count));
    s->commit_rows.push_back(s->row_begin + rows[i]);
  }
  s->commit_rows.resize(static_cast<size_t>(s->rt->commit_room(s, n)));
  if (Status st = s->rt->forward().commit(s->kv_seq, s->commit_rows); !st) {
    const int code = st.error().code == SPECD_E_INVALID_ARG ? SPECD_E_PLUGIN : st.error().code;
    s->rt->fail(s, code, code == SPECD_E_PLUGIN ? "decoder '" + s->host.decoder->name + "': " + st.error().message
                                                : st.error().message);
    return code;
  }
  s->committed_this_step += n;
  return SPECD_OK;
}

int32_t h_emit(specd_seq* s, const int32_t* tokens, int32_t n) {
  if (!s || n < 0 || (n > 0 && !tokens)) return SPECD_E_INVALID_ARG;
  const auto& c = s->rt->model().config();
  for (int32_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c.vocab || tokens[i] == c.mask)
      return misuse(s, SPECD_E_BAD_TOKEN, "emitted token id " + std::to_string(tokens[i]) + " (vocab " +
                                              std::to_string(c.vocab) + ", mask " + std::to_string(c.mask) + ")");
  return s->rt->take_tokens(s, tokens, n);
}

void h_finish(specd_seq* s, int32_t reason) {
  if (s) s->rt->finish(s, reason >= SPECD_FINISH_LENGTH && reason <= SPECD_FINISH_CANCEL ? reason : SPECD_FINISH_DECODER);
}
int32_t h_seq_finished(specd_seq* s) { return s ? s->result.finish_reason : SPECD_FINISH_ERROR; }

int h_fail(specd_seq* s, int32_t code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = "decoder '" + s->host.decoder->name + "': " + vformat(fmt, ap);
  va_end(ap);
  if (code >= 0) code = SPECD_E_PLUGIN;
  s->fail_message = msg;
  if (s->begun) s->rt->fail(s, code, std::move(msg));
  return code;
}

engine::SamplingParams params(const specd_seq* s) { return s->req.sampling; }

// The logits a token is drawn from: a model's MASK token is never a token of text, so its logit is
// excluded (the law given "not MASK"); a copy into the sequence's reserved scratch, no allocation.
std::span<const float> text_logits(specd_seq* s, const float* logits) {
  const auto& c = s->rt->model().config();
  const auto v = static_cast<size_t>(c.vocab);
  if (c.mask < 0) return {logits, v};
  s->masked_logits.assign(logits, logits + v);
  s->masked_logits[static_cast<size_t>(c.mask)] = -std::numeric_limits<float>::infinity();
  return s->masked_logits;
}

// Logits a decoder hands the host must be numbers (-inf, a masked token, is one): NaN or +inf would
// make the draw meaningless (argmax skips NaN, the softmax becomes NaN), so the sequence fails with a
// named error instead of emitting noise.
bool finite_logits(specd_seq* s, const float* logits, const char* fn) {
  const int32_t v = s->rt->model().config().vocab;
  for (int32_t i = 0; i < v; ++i) {
    const float x = logits[i];
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) {
      misuse(s, SPECD_E_INVALID_ARG, std::string("logits passed to ") + fn + "() are not finite (" +
                                         (std::isnan(x) ? "NaN" : "+inf") + " at token " + std::to_string(i) + ")");
      return false;
    }
  }
  return true;
}

int32_t h_sample(specd_seq* s, const float* logits) {
  if (!s || !logits) return SPECD_E_INVALID_ARG;
  if (!finite_logits(s, logits, "sample")) return SPECD_E_INVALID_ARG;
  return s->rt->sampler().sample(text_logits(s, logits), params(s), s->rng);
}
int h_probs(specd_seq* s, const float* logits, float* probs) {
  if (!s || !logits || !probs) return SPECD_E_INVALID_ARG;
  if (!finite_logits(s, logits, "probs")) return SPECD_E_INVALID_ARG;
  const auto v = static_cast<size_t>(s->rt->model().config().vocab);
  s->rt->sampler().distribution(text_logits(s, logits), params(s), {probs, v});
  return SPECD_OK;
}
double h_uniform(specd_seq* s) { return s->rng.uniform(); }
int32_t h_argmax(const float* x, int32_t n) { return x && n > 0 ? engine::argmax({x, static_cast<size_t>(n)}) : -1; }

const specd_host_api kApi = {
    sizeof(specd_host_api), SPECD_DECODER_ABI_MAJOR, SPECD_DECODER_ABI_MINOR,
    h_alloc, h_free, h_log,
    h_opt_int, h_opt_float, h_opt_string,
    h_seq_tokens, h_seq_prompt_len, h_seq_kv_len, h_seq_remaining, h_seq_sampling, h_seq_set_user, h_seq_user,
    h_row_add, h_row_see, h_row_see_all_before,
    h_out_logits, h_out_hidden, h_commit, h_emit, h_finish, h_seq_finished, h_fail,
    h_sample, h_probs, h_uniform, h_argmax,
    tensor_ops::tensor, tensor_ops::buf_create, tensor_ops::buf_destroy, tensor_ops::buf_write, tensor_ops::buf_read,
    tensor_ops::gemm, tensor_ops::embed, tensor_ops::silu, tensor_ops::add, tensor_ops::log_softmax, tensor_ops::topk,
    host_files::file_attach, host_files::meta_int, host_files::meta_float, host_files::meta_string, host_files::refuse,
    host_cost::step_cost, host_cost::seq_decoder_cost, host_cost::seq_note_setting,
    host_cost::decoder_memory,
};

}  // namespace

Result<nlohmann::json> parse_decoder_options(const std::string& text) {
  StrictJson j = parse_strict_json(text.empty() ? "{}" : text);
  if (!j.syntax_error.empty()) return make_error(SPECD_E_BAD_OPTION, "decoder options are not valid JSON: %s", j.syntax_error.c_str());
  if (!j.repeated_key.empty()) return make_error(SPECD_E_BAD_OPTION, "decoder option '%s' is given twice", j.repeated_key.c_str());
  if (!j.value.is_object()) return make_error(SPECD_E_BAD_OPTION, "decoder options must be a JSON object");
  return std::move(j.value);
}

const specd_host_api* host_api() { return &kApi; }

// kApi as an older host had it: struct_size and abi_minor of that minor, the later slots zeroed so
// a decoder that reads past struct_size fails loudly instead of working by luck.
specd_host_api trimmed(size_t size, uint32_t minor) {
  specd_host_api t = kApi;
  std::memset(reinterpret_cast<unsigned char*>(&t) + size, 0, sizeof t - size);
  t.struct_size = static_cast<uint32_t>(size);
  t.abi_minor = minor;
  return t;
}

const specd_host_api* host_api(uint32_t minor) {
  static const specd_host_api v10 = trimmed(offsetof(specd_host_api, file_attach), 0);
  static const specd_host_api v11 = trimmed(offsetof(specd_host_api, step_cost), 1);
  static const specd_host_api v12 = trimmed(offsetof(specd_host_api, decoder_memory), 2);
  return minor == 0 ? &v10 : minor == 1 ? &v11 : minor == 2 ? &v12 : &kApi;
}

}  // namespace specd::daemon
