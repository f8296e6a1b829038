/* example-greedy: a third-party greedy decoder for specd, built outside the specd tree against the installed header.
 *
 * Build:  make            (uses `pkg-config --cflags specd-decoder`)
 * Load:   copy greedy_decoder.so into a plugin directory owned by the daemon's user, not writable
 *         by others; requests then name the decoder "example-greedy".
 *
 * Each step feeds every token not yet in the KV cache (the prompt first, then the last emitted
 * token) as one causal chain, commits all of those rows and emits the argmax of the last row. */
#include <specd/decoder.h>

/* plan() and accept() get only the instance, so it keeps what create() was handed. */
typedef struct example {
  const specd_host_api *api;
  specd_host *host;
  int32_t vocab;
} example;

static int example_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                          const char *options_json, void **instance) {
  example *e;
  (void)options_json;
  *instance = NULL;
  e = (example *)api->mem_alloc(h, sizeof *e);
  if (!e) return SPECD_E_NOMEM;
  e->api = api;
  e->host = h;
  e->vocab = model->vocab;
  *instance = e;
  return SPECD_OK;
}

static void example_destroy(void *instance) {
  example *e = (example *)instance;
  if (e) e->api->mem_free(e->host, e);
}

static int example_begin(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
  return SPECD_OK;
}

static int example_plan(void *instance, specd_seq *s, specd_batch *b) {
  const example *e = (const example *)instance;
  const int32_t *tokens;
  const int32_t n = e->api->seq_tokens(s, &tokens);
  int32_t pos;
  for (pos = e->api->seq_kv_len(s); pos < n; ++pos) {
    const int32_t row = e->api->row_add(b, tokens[pos], pos, pos == n - 1 ? SPECD_ROW_LOGITS : 0u);
    int rc;
    if (row < 0) return row;
    rc = e->api->row_see_all_before(b, row);
    if (rc != SPECD_OK) return rc;
  }
  return SPECD_OK;
}

static int example_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  const example *e = (const example *)instance;
  const int32_t *tokens;
  const int32_t n_rows = e->api->seq_tokens(s, &tokens) - e->api->seq_kv_len(s);
  const float *logits;
  int32_t row, next, taken;
  for (row = 0; row < n_rows; ++row) {
    const int rc = e->api->commit(s, o, &row, 1);
    if (rc != SPECD_OK) return rc;
  }
  logits = e->api->out_logits(o, n_rows - 1);
  if (!logits) return e->api->fail(s, SPECD_E_INTERNAL, "example-greedy: no logits");
  next = e->api->argmax(logits, e->vocab);
  taken = e->api->emit(s, &next, 1);
  return taken < 0 ? taken : SPECD_OK;
}

static const specd_decoder example_decoder = {
    SPECD_DECODER_HEAD,
    "example-greedy",
    "0.1",
    "greedy decoding; an example third-party plugin",
    example_create,
    example_destroy,
    example_begin,
    example_plan,
    example_accept,
    NULL, /* end: optional, nothing per sequence to free */
    /* ABI 1.2: no options (a table like plugins/ar/ar_decoder.c's describes them), lossless, no files */
    NULL, 0, SPECD_DECODER_LOSSLESS, NULL,
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor;
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &example_decoder : NULL;
}
