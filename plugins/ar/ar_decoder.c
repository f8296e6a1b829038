/* ar: plain autoregressive decoding, greedy or sampled — the baseline every other decoder is checked against.
 *
 * Stateless per sequence: a step's rows follow from seq_tokens() and seq_kv_len(), which do not
 * change between plan() and accept(). Per step, with n = seq_tokens(), kv = seq_kv_len():
 *   plan    finish(CONTEXT) if n > ctx_len (the last token could never be run); else
 *           r = min(n - kv, prefill_chunk) rows tokens[kv .. kv+r) at positions kv .., a causal
 *           chain, SPECD_ROW_LOGITS only on the row of tokens[n-1].
 *   accept  commit rows 0..r-1; if kv + r == n, emit sample(logits of row r-1).
 * So a prompt takes ceil(len / prefill_chunk) steps, then every step emits one token.
 * Options: prefill_chunk (default 256, 1..4096). Written in C11 against abi/ only. */
#include <specd/decoder.h>

typedef struct ar_instance {
  const specd_host_api *api;
  specd_host *host;
  int32_t ctx_len;
  int32_t chunk;  /* prefill_chunk: most rows per step */
  int32_t rows[]; /* 0, 1, ..., chunk-1: the row list commit() takes, filled once in create() */
} ar_instance;

/* Rows of the step that starts from kv with n tokens: the pending ones, capped at the chunk. */
static int32_t step_rows(const ar_instance *ar, int32_t n, int32_t kv) {
  const int32_t pending = n - kv;
  return pending < ar->chunk ? pending : ar->chunk;
}

static int ar_create(const specd_host_api *api, specd_host *h, const specd_model_info *model, const char *options_json,
                     void **instance) {
  (void)options_json; /* read through api->opt_int */
  *instance = NULL;
  if (!SPECD_HAS(specd_host_api, api, sample) || !SPECD_HAS(specd_model_info, model, ctx_len)) return SPECD_E_VERSION;
  int64_t chunk = 0;
  const int rc = api->opt_int(h, "prefill_chunk", 256, 1, 4096, &chunk);
  if (rc != SPECD_OK) return rc; /* the host reports which option and why */
  /* A step may not exceed the host's row budget (ABI 1.0 hosts that predate max_rows: 1024). */
  const int64_t budget = SPECD_HAS(specd_model_info, model, max_rows) ? model->max_rows : 1024;
  if (chunk > budget) chunk = budget;
  ar_instance *ar = api->mem_alloc(h, sizeof *ar + (size_t)chunk * sizeof(int32_t));
  if (ar == NULL) return SPECD_E_NOMEM;
  ar->api = api;
  ar->host = h;
  ar->ctx_len = model->ctx_len;
  ar->chunk = (int32_t)chunk;
  for (int32_t i = 0; i < ar->chunk; ++i) ar->rows[i] = i;
  *instance = ar;
  return SPECD_OK;
}

static void ar_destroy(void *instance) {
  ar_instance *ar = instance;
  if (ar != NULL) ar->api->mem_free(ar->host, ar);
}

static int ar_begin(void *instance, specd_seq *s) {
  const ar_instance *ar = instance;
  const int32_t *tok = NULL;
  if (ar->api->seq_tokens(s, &tok) <= 0) return ar->api->fail(s, SPECD_E_INVALID_ARG, "empty prompt");
  return SPECD_OK;
}

static int ar_plan(void *instance, specd_seq *s, specd_batch *b) {
  const ar_instance *ar = instance;
  const specd_host_api *api = ar->api;
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  if (n > ar->ctx_len) {
    api->finish(s, SPECD_FINISH_CONTEXT);
    return SPECD_OK;
  }
  if (kv >= n) return api->fail(s, SPECD_E_INTERNAL, "no pending token (kv %d, tokens %d)", kv, n);
  const int32_t r = step_rows(ar, n, kv);
  for (int32_t i = 0; i < r; ++i) {
    const int32_t pos = kv + i;
    const int32_t row = api->row_add(b, tok[pos], pos, pos == n - 1 ? SPECD_ROW_LOGITS : 0u);
    if (row < 0) return api->fail(s, row, "row_add at position %d failed (%d; prefill_chunk %d)", pos, row, ar->chunk);
    if (row > 0) {
      const int rc = api->row_see_all_before(b, row);
      if (rc != SPECD_OK) return rc;
    }
  }
  return SPECD_OK;
}

static int ar_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  const ar_instance *ar = instance;
  const specd_host_api *api = ar->api;
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  const int32_t r = step_rows(ar, n, kv);
  const int rc = api->commit(s, o, ar->rows, r);
  if (rc != SPECD_OK) return rc;
  if (kv + r < n) return SPECD_OK; /* a prefill chunk: nothing to emit yet */
  const float *logits = api->out_logits(o, r - 1);
  if (logits == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits for row %d", r - 1);
  const int32_t y = api->sample(s, logits);
  if (y < 0) return y;
  const int32_t taken = api->emit(s, &y, 1);
  return taken < 0 ? taken : SPECD_OK;
}

/* What create() reads (ABI 1.2; tests/test_decoder_options.cpp checks it against the code). */
static const specd_option_desc ar_options[] = {
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "prefill_chunk", "256", "[1, 4096]",
     "prompt tokens per forward while reading the prompt (capped by the host's row budget)"},
};

static const specd_decoder ar_decoder = {
    SPECD_DECODER_HEAD,  .name = "ar",
    .version = "1.0.0",  .description = "plain autoregressive decoding, greedy or sampled (options: prefill_chunk)",
    .create = ar_create, .destroy = ar_destroy,
    .begin = ar_begin,   .plan = ar_plan,
    .accept = ar_accept, .end = NULL,
    .options = ar_options, .n_options = sizeof ar_options / sizeof ar_options[0],
    .flags = SPECD_DECODER_LOSSLESS, .needs = NULL,
};

SPECD_EXPORT const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor; /* everything used here is in 1.0 */
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &ar_decoder : NULL;
}
