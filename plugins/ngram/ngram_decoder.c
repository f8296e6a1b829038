/* ngram: prompt-lookup speculative decoding — drafts copied from earlier context, verified in one forward.
 *
 * Per step, with n = seq_tokens(), kv = seq_kv_len():
 *   plan    finish(CONTEXT) if n > ctx_len. With more than one token pending (the prompt), a
 *           prefill chunk exactly as ar: rows tokens[kv .. kv+r), r = min(n - kv, prefill_chunk),
 *           a causal chain, SPECD_ROW_LOGITS on the row of tokens[n-1] only. With one token t
 *           pending, a draft d_1..d_m (ngram_match.h; m <= k, m <= seq_remaining() - 1,
 *           kv + 1 + m <= ctx_len) and rows t, d_1..d_m at kv, kv+1, .., kv+m, a causal chain,
 *           all with SPECD_ROW_LOGITS. m = 0 is a plain ar step.
 *   accept  a prefill chunk without the last token: commit its rows. Otherwise walk i = 0..m:
 *           y = sample(logits of the row of t or d_i); go on iff i < m and y == d_{i+1}. Commit
 *           the row of t and those of d_1..d_i, then emit d_1..d_i, y in one emit().
 * Sampling y ~ P and descending iff y is the draft is docs/methods/redrafter.md §5.3's exact rule
 * for deterministic drafts: every emitted token is one api->sample() of the same logits ar would
 * see, so the output law is ar's (greedy: identical tokens; sampled with the same seed: the same
 * RNG draws in the same order). Options: k (1..64; absent: auto), ngram_max (3, 1..8), ngram_min
 * (1, 1..ngram_max), prefill_chunk (256, 1..4096). With k absent, each draft step verifies the
 * prefix of the found draft (up to 16) that maximises expected tokens per unit of time, from this
 * sequence's acceptance by depth and the host's step_cost (plugins/common/spec_auto.h; a host
 * older than ABI 1.2 gets the fixed k = 8). Nothing is allocated per step. */
#include <inttypes.h>
#include <specd/decoder.h>

#include <stdio.h>

#include "../common/spec_auto.h"
#include "ngram_match.h"

#define NGRAM_AUTO_K 16 /* the longest draft auto considers */

typedef struct ngram_instance {
  const specd_host_api *api;
  specd_host *host;
  int32_t ctx_len;
  int32_t chunk; /* prefill_chunk */
  int32_t k;
  int32_t is_auto; /* k was not given: choose per step (needs the 1.2 cost model) */
  spec_accept_hist *hist; /* auto: the host's decoder memory (ABI 1.3; NULL on older hosts) */
  int32_t ngram_min, ngram_max;
  int32_t n_rows; /* max(chunk, k + 1): the longest commit */
  int32_t rows[]; /* 0, 1, ..., n_rows-1: row lists for commit(), filled in create() */
} ngram_instance;

typedef struct ngram_seq {
  int32_t m;                              /* drafts planned this step (rows 1..m); 0 in prefill steps */
  int64_t draft_steps, drafted, accepted; /* for the debug line in end() */
  spec_accept acc;                        /* auto: live acceptance by depth */
  int32_t draft[];                        /* k + 1 slots: d_1..d_m, then the emitted run d_1..d_i, y */
} ngram_seq;

static int read_opt(const specd_host_api *api, specd_host *h, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int32_t *out) {
  int64_t v = 0;
  const int rc = api->opt_int(h, key, def, lo, hi, &v);
  if (rc != SPECD_OK) return rc; /* the host reports which option and why */
  *out = (int32_t)v;
  return SPECD_OK;
}

static int ngram_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                        const char *options_json, void **instance) {
  (void)options_json; /* read through api->opt_int */
  *instance = NULL;
  if (!SPECD_HAS(specd_host_api, api, sample) || !SPECD_HAS(specd_model_info, model, ctx_len)) return SPECD_E_VERSION;
  int32_t k = 0, nmax = 0, nmin = 0, chunk = 0;
  int rc = read_opt(api, h, "k", 0, 1, 64, &k); /* 0: absent, auto */
  if (rc == SPECD_OK) rc = read_opt(api, h, "ngram_max", 3, 1, 8, &nmax);
  if (rc == SPECD_OK) rc = read_opt(api, h, "ngram_min", 1, 1, nmax, &nmin);
  if (rc == SPECD_OK) rc = read_opt(api, h, "prefill_chunk", 256, 1, 4096, &chunk);
  if (rc != SPECD_OK) return rc;
  const int32_t is_auto = k == 0 && SPECD_HAS(specd_host_api, api, seq_note_setting);
  if (k == 0) k = is_auto ? NGRAM_AUTO_K : 8;
  /* A step may not exceed the host's row budget (ABI 1.0 hosts that predate max_rows: 1024). */
  const int32_t budget = SPECD_HAS(specd_model_info, model, max_rows) ? model->max_rows : 1024;
  if (chunk > budget) chunk = budget;
  if (k + 1 > budget) k = budget - 1;
  const int32_t n_rows = chunk > k + 1 ? chunk : k + 1;
  ngram_instance *g = api->mem_alloc(h, sizeof *g + (size_t)n_rows * sizeof(int32_t));
  if (g == NULL) return SPECD_E_NOMEM;
  g->api = api;
  g->host = h;
  g->ctx_len = model->ctx_len;
  g->chunk = chunk;
  g->k = k;
  g->is_auto = is_auto;
  g->hist = is_auto && SPECD_HAS(specd_host_api, api, decoder_memory) ? api->decoder_memory(h, sizeof(spec_accept_hist)) : NULL;
  g->ngram_min = nmin;
  g->ngram_max = nmax;
  g->n_rows = n_rows;
  for (int32_t i = 0; i < n_rows; ++i) g->rows[i] = i;
  *instance = g;
  return SPECD_OK;
}

static void ngram_destroy(void *instance) {
  ngram_instance *g = instance;
  if (g != NULL) g->api->mem_free(g->host, g);
}

static int ngram_begin(void *instance, specd_seq *s) {
  const ngram_instance *g = instance;
  const specd_host_api *api = g->api;
  const int32_t *tok = NULL;
  if (api->seq_tokens(s, &tok) <= 0) return api->fail(s, SPECD_E_INVALID_ARG, "empty prompt");
  ngram_seq *st = api->mem_alloc(g->host, sizeof *st + (size_t)(g->k + 1) * sizeof(int32_t));
  if (st == NULL) return api->fail(s, SPECD_E_NOMEM, "out of memory for the draft buffer");
  st->m = 0;
  st->draft_steps = st->drafted = st->accepted = 0;
  spec_accept_init(&st->acc, SPEC_AUTO_PRIOR_P);
  spec_accept_seed(&st->acc, g->hist);
  api->seq_set_user(s, st);
  return SPECD_OK;
}

static void ngram_end(void *instance, specd_seq *s) {
  const ngram_instance *g = instance;
  ngram_seq *st = g->api->seq_user(s);
  if (st == NULL) return;
  spec_accept_keep(g->hist, &st->acc);
  g->api->log_msg(g->host, SPECD_LOG_DEBUG, "%" PRId64 " draft steps, %" PRId64 " drafted, %" PRId64 " accepted",
              st->draft_steps, st->drafted, st->accepted);
  g->api->seq_set_user(s, NULL);
  g->api->mem_free(g->host, st);
}

/* Rows of the step that starts from kv with n tokens: the pending ones, capped at the chunk. */
static int32_t pending_rows(const ngram_instance *g, int32_t n, int32_t kv) {
  const int32_t pending = n - kv;
  return pending < g->chunk ? pending : g->chunk;
}

/* Add a row chained after every earlier row of the step; returns its index or a negative code. */
static int32_t add_chained(const specd_host_api *api, specd_batch *b, int32_t token, int32_t pos, uint32_t flags) {
  const int32_t row = api->row_add(b, token, pos, flags);
  if (row <= 0) return row;
  const int rc = api->row_see_all_before(b, row);
  return rc != SPECD_OK ? rc : row;
}

/* The longest draft allowed after token t at position kv = n - 1. */
static int32_t draft_limit(const ngram_instance *g, specd_seq *s, int32_t n) {
  int32_t limit = g->k;
  const int32_t remaining = g->api->seq_remaining(s) - 1; /* y itself takes one */
  const int32_t room = g->ctx_len - n;                    /* kv + 1 + m <= ctx_len */
  if (remaining < limit) limit = remaining;
  if (room < limit) limit = room;
  return limit;
}

/* auto: the prefix of the m found drafts worth verifying (0: a plain step), noted for the run log. */
static int32_t auto_draft_len(const ngram_instance *g, ngram_seq *st, specd_seq *s, int32_t m) {
  double tokens[NGRAM_AUTO_K + 1], cost[NGRAM_AUTO_K + 1];
  if (m <= 0) return 0; /* nothing to verify: a plain step by necessity, not a choice */
  for (int32_t k = 0; k <= m; ++k) {
    tokens[k] = spec_expected_tokens(&st->acc, k);
    cost[k] = g->api->step_cost(g->host, k + 1);
  }
  const int32_t k = spec_auto_choose(&st->acc, tokens, cost, m + 1);
  char label[16];
  if (k > 0)
    snprintf(label, sizeof label, "k=%d", (int)k);
  else
    snprintf(label, sizeof label, "plain");
  g->api->seq_note_setting(s, label);
  return k;
}

static int ngram_plan(void *instance, specd_seq *s, specd_batch *b) {
  const ngram_instance *g = instance;
  const specd_host_api *api = g->api;
  ngram_seq *st = api->seq_user(s);
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "plan before begin");
  st->m = 0;
  if (n > g->ctx_len) {
    api->finish(s, SPECD_FINISH_CONTEXT);
    return SPECD_OK;
  }
  if (kv >= n) return api->fail(s, SPECD_E_INTERNAL, "no pending token (kv %d, tokens %d)", kv, n);
  if (n - kv > 1) { /* prefill, as ar */
    const int32_t r = pending_rows(g, n, kv);
    for (int32_t i = 0; i < r; ++i) {
      const int32_t pos = kv + i;
      const int32_t row = add_chained(api, b, tok[pos], pos, pos == n - 1 ? SPECD_ROW_LOGITS : 0u);
      if (row < 0) return api->fail(s, row, "prefill row at position %d failed (%d)", pos, row);
    }
    return SPECD_OK;
  }
  const int32_t limit = draft_limit(g, s, n);
  int32_t m = ngram_find_draft(tok, n, g->ngram_min, g->ngram_max, limit, st->draft);
  if (g->is_auto) m = auto_draft_len(g, st, s, m);
  const int32_t row = add_chained(api, b, tok[kv], kv, SPECD_ROW_LOGITS);
  if (row < 0) return api->fail(s, row, "row at position %d failed (%d)", kv, row);
  int32_t added = 0;
  for (; added < m; ++added) {
    const int32_t r = add_chained(api, b, st->draft[added], kv + 1 + added, SPECD_ROW_LOGITS);
    if (r == SPECD_E_LIMIT) break; /* over the host's rows-per-step budget: verify a shorter draft */
    if (r < 0) return api->fail(s, r, "draft row at position %d failed (%d)", kv + 1 + added, r);
  }
  st->m = added;
  return SPECD_OK;
}

static int ngram_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  const ngram_instance *g = instance;
  const specd_host_api *api = g->api;
  ngram_seq *st = api->seq_user(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "accept before begin");
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  const int32_t r = pending_rows(g, n, kv); /* rows of pending tokens; the last is t when kv + r == n */
  const int32_t m = st->m;
  st->m = 0;
  if (kv + r < n) return api->commit(s, o, g->rows, r); /* a prefill chunk: nothing to emit yet */
  int32_t i = 0;
  int32_t y = 0;
  for (;; ++i) {
    const float *logits = api->out_logits(o, r - 1 + i);
    if (logits == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits for row %d", r - 1 + i);
    y = api->sample(s, logits);
    if (y < 0) return y;
    if (i >= m || y != st->draft[i]) break;
  }
  const int rc = api->commit(s, o, g->rows, r + i);
  if (rc != SPECD_OK) return rc;
  if (m > 0) {
    spec_accept_record(&st->acc, m, i);
    st->draft_steps++;
    st->drafted += m;
    st->accepted += i;
  }
  st->draft[i] = y; /* d_{i+1} was rejected (or i == m): the run d_1..d_i, y sits in draft[0..i] */
  const int32_t taken = api->emit(s, st->draft, i + 1);
  return taken < 0 ? taken : SPECD_OK;
}

/* What create() reads (ABI 1.2; tests/test_decoder_options.cpp checks it against the code). */
static const specd_option_desc ngram_options[] = {
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "k", "0: auto, chosen each step", "[1, 64]",
     "most draft tokens copied from the context per step; left out: auto (up to 16, or plain steps when drafts do not pay)"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "ngram_max", "3", "[1, 8]", "longest n-gram matched against the context"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "ngram_min", "1", "[1, ngram_max]", "shortest n-gram matched"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "prefill_chunk", "256", "[1, 4096]", "prompt tokens per forward"},
};

static const specd_decoder ngram_decoder = {
    SPECD_DECODER_HEAD,
    .name = "ngram",
    .version = "1.1.0",
    .description = "prompt-lookup speculative decoding, lossless (options: k (absent: auto), ngram_max, ngram_min, "
                   "prefill_chunk)",
    .create = ngram_create,
    .destroy = ngram_destroy,
    .begin = ngram_begin,
    .plan = ngram_plan,
    .accept = ngram_accept,
    .end = ngram_end,
    .options = ngram_options,
    .n_options = sizeof ngram_options / sizeof ngram_options[0],
    .flags = SPECD_DECODER_LOSSLESS,
    .needs = NULL,
};

SPECD_EXPORT const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor; /* 1.0 suffices; auto uses 1.2's cost model only when SPECD_HAS says it is there */
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &ngram_decoder : NULL;
}
