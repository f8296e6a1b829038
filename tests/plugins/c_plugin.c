/* c_plugin: a minimal greedy autoregressive decoder in plain C11, written only against specd/decoder.h. */
#include <stddef.h>
#include <specd/decoder.h>

/* The host table, handle and model are only handed to create(), so the instance keeps them for
 * plan/accept/destroy; they stay valid until destroy() returns. */
typedef struct greedy {
  const specd_host_api *api;
  specd_host *host;
  const specd_model_info *model;
} greedy;

static int greedy_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                         const char *options_json, void **instance) {
  greedy *g;
  (void)options_json;
  *instance = NULL;
  g = (greedy *)api->mem_alloc(h, sizeof *g);
  if (!g) return SPECD_E_NOMEM;
  g->api = api;
  g->host = h;
  g->model = model;
  *instance = g;
  return SPECD_OK;
}

static void greedy_destroy(void *instance) {
  greedy *g = (greedy *)instance;
  if (g) g->api->mem_free(g->host, g);
}

static int greedy_begin(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
  return SPECD_OK;
}

/* Every token not yet in the cache (the whole prompt first, then the last emitted token) as one
 * causal chain; only the last row needs logits. */
static int greedy_plan(void *instance, specd_seq *s, specd_batch *b) {
  const greedy *g = (const greedy *)instance;
  const int32_t *tokens;
  const int32_t n = g->api->seq_tokens(s, &tokens);
  const int32_t kv = g->api->seq_kv_len(s);
  int32_t i;
  if (n <= kv) return g->api->fail(s, SPECD_E_INTERNAL, "c_plugin: nothing to decode (%d tokens, %d in KV)", n, kv);
  for (i = kv; i < n; ++i) {
    const int32_t row = g->api->row_add(b, tokens[i], i, i == n - 1 ? SPECD_ROW_LOGITS : 0u);
    int rc;
    if (row < 0) return row;
    rc = g->api->row_see_all_before(b, row);
    if (rc != SPECD_OK) return rc;
  }
  return SPECD_OK;
}

/* Nothing changes between plan and accept, so the rows planned are again tokens[kv_len .. n). They
 * are committed in chunks so a long prompt needs no allocation. */
static int greedy_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  enum { CHUNK = 256 };
  const greedy *g = (const greedy *)instance;
  const int32_t *tokens;
  const int32_t n_rows = g->api->seq_tokens(s, &tokens) - g->api->seq_kv_len(s);
  int32_t rows[CHUNK];
  int32_t done, k, next, taken;
  const float *logits;
  for (done = 0; done < n_rows; done += k) {
    int rc;
    for (k = 0; k < CHUNK && done + k < n_rows; ++k) rows[k] = done + k;
    rc = g->api->commit(s, o, rows, k);
    if (rc != SPECD_OK) return rc;
  }
  logits = g->api->out_logits(o, n_rows - 1);
  if (!logits) return g->api->fail(s, SPECD_E_INTERNAL, "c_plugin: no logits for row %d", n_rows - 1);
  next = g->api->argmax(logits, g->model->vocab);
  taken = g->api->emit(s, &next, 1);
  return taken < 0 ? taken : SPECD_OK;
}

static void greedy_end(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
}

/* Built as a 1.1 plugin would be: its descriptor ends before ABI 1.2's options table, so the host
 * must load it and list "options not described". Built a second time as c_plugin_v11
 * (-DC_PLUGIN_V11), the same descriptor under another name, for the test that a 1.2 host runs 1.1
 * plugins beside current ones. */
#ifdef C_PLUGIN_V11
#define C_PLUGIN_NAME "c_plugin_v11"
#else
#define C_PLUGIN_NAME "c_plugin"
#endif

static const specd_decoder c_plugin_decoder = {
    offsetof(specd_decoder, options), SPECD_DECODER_ABI_MAJOR, 1, (uint32_t)sizeof(void *),
    C_PLUGIN_NAME,
    "1.0",
    "greedy autoregressive decoding, plain C11 (specd test plugin)",
    greedy_create,
    greedy_destroy,
    greedy_begin,
    greedy_plan,
    greedy_accept,
    greedy_end,
    /* ABI 1.2's fields, never read: struct_size says 1.1 (tests/test_decoder_options.cpp) */
    NULL, 0, 0, NULL,
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor;
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &c_plugin_decoder : NULL;
}
