/* misbehave: a greedy decoder whose option "mode" picks one ABI violation, so host-side checks can be tested. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <specd/decoder.h>

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Modes, from the "mode" option. MODE_OK behaves like c_plugin. */
enum {
  MODE_OK,
  MODE_BAD_TOKEN,   /* emits token 99999 */
  MODE_BAD_COMMIT,  /* commits row 1 before row 0 (or row 0 twice: a position gap) */
  MODE_NO_PROGRESS, /* adds a row every step, never commits or emits */
  MODE_NO_ROWS,     /* adds no rows and does not finish */
  MODE_BAD_ROW,     /* row_see with an out-of-range row; returns its error */
  MODE_PLAN_ERROR,  /* plan fails with SPECD_E_INTERNAL through api->fail */
  MODE_NAN_LOGITS,  /* asks the host to sample from NaN logits and emits what it returns */
  MODE_HUGE_ALLOC,  /* mem_alloc of SIZE_MAX - 7 bytes and of 64 MiB; uses the memory if given any */
  MODE_HUGE_BUF,    /* buf_create of SIZE_MAX / 8 floats and of 16 Mi floats */
  MODE_SLOW,        /* sleeps 80 ms in every plan */
  MODE_CRASH,       /* emits 20 tokens, then dies of SIGSEGV in plan (an in-process plugin's crash) */
  MODE_OVERCOMMIT   /* commits OVERCOMMIT_ROWS rows a step and emits one: its K/V outgrows its tokens */
};

#define OVERCOMMIT_ROWS 4

static const char *const mode_names[] = {"ok",        "bad_token",  "bad_commit", "no_progress", "no_rows",
                                         "bad_row",   "plan_error", "nan_logits", "huge_alloc",  "huge_buf",
                                         "slow",      "crash",      "overcommit"};

typedef struct misbehave {
  const specd_host_api *api;
  specd_host *host;
  const specd_model_info *model;
  int mode;
} misbehave;

static int misbehave_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                            const char *options_json, void **instance) {
  const char *m = NULL;
  int mode, rc;
  misbehave *d;
  (void)options_json;
  *instance = NULL;
  rc = api->opt_string(h, "mode", "ok", &m);
  if (rc != SPECD_OK) return rc;
  for (mode = 0; mode < (int)(sizeof mode_names / sizeof mode_names[0]); ++mode)
    if (strcmp(m, mode_names[mode]) == 0) break;
  if (mode == (int)(sizeof mode_names / sizeof mode_names[0])) {
    api->log_msg(h, SPECD_LOG_ERROR, "misbehave: unknown mode '%s'", m);
    return SPECD_E_BAD_OPTION;
  }
  d = (misbehave *)api->mem_alloc(h, sizeof *d);
  if (!d) return SPECD_E_NOMEM;
  d->api = api;
  d->host = h;
  d->model = model;
  d->mode = mode;
  *instance = d;
  return SPECD_OK;
}

static void misbehave_destroy(void *instance) {
  misbehave *d = (misbehave *)instance;
  if (d) d->api->mem_free(d->host, d);
}

static int misbehave_begin(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
  return SPECD_OK;
}

/* The uncached tokens as a causal chain with logits on the last row, as c_plugin does. */
static int add_chain(const misbehave *d, specd_seq *s, specd_batch *b) {
  const int32_t *tokens;
  const int32_t n = d->api->seq_tokens(s, &tokens);
  int32_t i;
  for (i = d->api->seq_kv_len(s); i < n; ++i) {
    const int32_t row = d->api->row_add(b, tokens[i], i, i == n - 1 ? SPECD_ROW_LOGITS : 0u);
    int rc;
    if (row < 0) return row;
    rc = d->api->row_see_all_before(b, row);
    if (rc != SPECD_OK) return rc;
  }
  return SPECD_OK;
}

static int misbehave_plan(void *instance, specd_seq *s, specd_batch *b) {
  const misbehave *d = (const misbehave *)instance;
  int rc;
  switch (d->mode) {
    case MODE_NO_ROWS:
      return SPECD_OK;
    case MODE_PLAN_ERROR:
      return d->api->fail(s, SPECD_E_INTERNAL, "misbehave: plan_error mode");
    case MODE_HUGE_ALLOC: {
      const size_t sizes[2] = {SIZE_MAX - 7, (size_t)64 << 20};
      int i;
      for (i = 0; i < 2; ++i) {
        unsigned char *p = (unsigned char *)d->api->mem_alloc(d->host, sizes[i]);
        if (p) { /* a host that says yes must mean it: touch the first and last page */
          p[0] = 1;
          p[sizes[i] - 1] = 1;
          d->api->mem_free(d->host, p);
          return d->api->fail(s, SPECD_E_INTERNAL, "misbehave: mem_alloc(%zu) succeeded", sizes[i]);
        }
      }
      return d->api->fail(s, SPECD_E_NOMEM, "misbehave: the host refused both allocations");
    }
    case MODE_HUGE_BUF: {
      const size_t counts[2] = {SIZE_MAX / 8, (size_t)16 << 20};
      int i;
      for (i = 0; i < 2; ++i) {
        specd_buf *buf = NULL;
        const int rc = d->api->buf_create(d->host, counts[i], &buf);
        if (rc == SPECD_OK) {
          d->api->buf_destroy(d->host, buf);
          return d->api->fail(s, SPECD_E_INTERNAL, "misbehave: buf_create(%zu) succeeded", counts[i]);
        }
        if (rc != SPECD_E_NOMEM) return d->api->fail(s, SPECD_E_INTERNAL, "misbehave: buf_create gave %d", rc);
      }
      return d->api->fail(s, SPECD_E_NOMEM, "misbehave: the host refused both buffers");
    }
    case MODE_SLOW: {
      const struct timespec t = {0, 80 * 1000 * 1000};
      nanosleep(&t, NULL);
      break;
    }
    case MODE_CRASH: {
      const int32_t *tokens;
      if (d->api->seq_tokens(s, &tokens) - d->api->seq_prompt_len(s) >= 20) raise(SIGSEGV);
      break;
    }
    case MODE_NO_PROGRESS: {
      const int32_t *tokens;
      const int32_t n = d->api->seq_tokens(s, &tokens);
      const int32_t row = d->api->row_add(b, tokens[n - 1], d->api->seq_kv_len(s), SPECD_ROW_LOGITS);
      return row < 0 ? row : SPECD_OK;
    }
    case MODE_OVERCOMMIT: {
      const int32_t *tokens;
      const int32_t n = d->api->seq_tokens(s, &tokens), kv = d->api->seq_kv_len(s);
      int32_t j;
      for (j = 0; j < OVERCOMMIT_ROWS; ++j) {
        const int32_t row = d->api->row_add(b, tokens[n - 1], kv + j, j == OVERCOMMIT_ROWS - 1 ? SPECD_ROW_LOGITS : 0u);
        if (row < 0) return row;
        rc = d->api->row_see_all_before(b, row);
        if (rc != SPECD_OK) return rc;
      }
      return SPECD_OK;
    }
    default:
      break;
  }
  rc = add_chain(d, s, b);
  if (rc != SPECD_OK || d->mode != MODE_BAD_ROW) return rc;
  return d->api->row_see(b, 0, 1000000);
}

/* Commits the planned rows in order, except in bad_commit mode. */
static int commit_rows(const misbehave *d, specd_seq *s, const specd_outputs *o, int32_t n_rows) {
  int32_t i;
  if (d->mode == MODE_BAD_COMMIT) {
    const int32_t swapped[2] = {1, 0};
    const int32_t zero = 0;
    int rc;
    if (n_rows >= 2) return d->api->commit(s, o, swapped, 2);
    rc = d->api->commit(s, o, &zero, 1);
    return rc != SPECD_OK ? rc : d->api->commit(s, o, &zero, 1);
  }
  for (i = 0; i < n_rows; ++i) {
    const int rc = d->api->commit(s, o, &i, 1);
    if (rc != SPECD_OK) return rc;
  }
  return SPECD_OK;
}

static int misbehave_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  const misbehave *d = (const misbehave *)instance;
  const int32_t *tokens;
  const int32_t n_rows =
      d->mode == MODE_OVERCOMMIT ? OVERCOMMIT_ROWS : d->api->seq_tokens(s, &tokens) - d->api->seq_kv_len(s);
  const float *logits;
  int32_t next, taken;
  int rc;
  if (d->mode == MODE_NO_PROGRESS) return SPECD_OK;
  rc = commit_rows(d, s, o, n_rows);
  if (rc != SPECD_OK) return rc;
  logits = d->api->out_logits(o, n_rows - 1);
  if (!logits) return d->api->fail(s, SPECD_E_INTERNAL, "misbehave: no logits for row %d", n_rows - 1);
  if (d->mode == MODE_NAN_LOGITS) {
    float *nan_logits = (float *)d->api->mem_alloc(d->host, sizeof(float) * (size_t)d->model->vocab);
    int32_t i;
    if (!nan_logits) return d->api->fail(s, SPECD_E_NOMEM, "misbehave: no memory");
    for (i = 0; i < d->model->vocab; ++i) nan_logits[i] = i == 7 ? NAN : logits[i];
    next = d->api->sample(s, nan_logits);
    d->api->mem_free(d->host, nan_logits);
    if (next < 0) return next;
  } else {
    next = d->mode == MODE_BAD_TOKEN ? 99999 : d->api->argmax(logits, d->model->vocab);
  }
  taken = d->api->emit(s, &next, 1);
  return taken < 0 ? taken : SPECD_OK;
}

static void misbehave_end(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
}

static const specd_decoder misbehave_decoder = {
    SPECD_DECODER_HEAD,
    "misbehave",
    "1.0",
    "greedy decoding with one selectable ABI violation (specd test plugin)",
    misbehave_create,
    misbehave_destroy,
    misbehave_begin,
    misbehave_plan,
    misbehave_accept,
    misbehave_end,
    NULL, 0, 0, NULL, /* ABI 1.2: no options described */
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor;
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &misbehave_decoder : NULL;
}
