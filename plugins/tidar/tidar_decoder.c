/* tidar: TiDAR — drafts by diffusion and verifies autoregressively in the same forward.
 *
 * docs: methods/tidar.md (§ numbers below), abi/README.md's TiDAR paragraph. The model has a MASK
 * token (model->mask_id). Per sequence the state is the block c[0..nc) (§2.1): c[0] = the last
 * emitted token (not in KV, position kv = seq_kv_len()), c[1..nc) the drafts of the last step.
 *   prefill (§2.6) rows tokens[kv .. kv+r) as a causal chain (chunks of prefill_chunk); the last
 *           chunk also gets k MASK rows at positions n..n+k-1, each seeing every chunk row and the
 *           other masks. accept: commit the chunk rows, s = pick(w·AR + (1-w)·D_0), drafts =
 *           argmax D_1..D_{k-1}; emit s; c = [s, drafts].
 *   decode  (§2.2, §2.3) ONE forward of k + k² rows: causal rows c[a] at kv + a (a causal chain),
 *           then for i = 1..k a group G_i of k MASK rows at kv + i + m (m = 0..k-1), each seeing
 *           c[0..i) and every row of G_i. All rows want logits. The visibility lists are built
 *           once per k in create() and only read per step.
 *           accept (§2.5, §3): j = 1; for i = 1..k-1: t = pick(target(i)); stop unless t == c[i],
 *           else j++. With no mismatch, t = pick(target(k)). target(i) = w·AR_{i-1} + (1-w)·D_{i,0}.
 *           Commit causal rows 0..j-1 (§4), emit c[1..j), t; next block c = [t, argmax D_{j,1..k-1}].
 * pick() is the host's sample() (argmax when greedy; one uniform per draw otherwise), so every
 * emitted token is one draw from target(i), the drafts only decide how many draws one forward
 * yields: with w = 1 greedy output is ar's and the sampled law is ar's (with the same seed, the
 * same stream). MASK is never emitted nor drafted: a draw that lands on it is redrawn with MASK's
 * logit at -inf (the law of target given "not MASK"); argmaxes skip it.
 * k shrinks at decode time when the context margin is short (positions up to kv + 2k - 1 must fit,
 * §2.2), and to the drafts available; with no room for one mask group a step is a plain ar step.
 * Options: k (1..16; absent: auto up to the model's specd.tidar.block_len, else 8), w (the model's
 * specd.tidar.w, else 1.0; 0..1), prefill_chunk (256, 1..4096). A model without a MASK token is
 * refused (SPECD_E_BAD_MODEL). auto (plugins/common/spec_auto.h) picks each decode step's k, or a
 * plain ar step, for the most expected tokens per unit of time from this sequence's acceptance by
 * depth and the host's step_cost (ABI 1.2; an older host gets the fixed default). A k above the
 * drafts at hand pads the block with copies of its last token: they are verified like any draft
 * (so the output is unchanged) and this step's mask groups yield the k-1 drafts of the next. */
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <specd/decoder.h>
#include <stdio.h>

#include "../common/spec_auto.h"

#define TIDAR_K_MAX 16

/* The in-flight pattern of one k (§2.2, §2.3): rows in slot order r = 0 .. k + k² - 1. */
typedef struct tidar_pattern {
  int32_t k;
  int32_t n_rows;      /* k + k² */
  int32_t *pos;        /* [n_rows]: position offset from kv */
  int32_t *see_begin;  /* [n_rows + 1]: row r sees see[see_begin[r] .. see_begin[r+1]) besides itself */
  int32_t *see;        /* earlier or later rows of the step, as row indices */
} tidar_pattern;

typedef struct tidar_instance {
  const specd_host_api *api;
  specd_host *host;
  int32_t vocab, mask_id, ctx_len;
  int32_t k;       /* the requested draft length; auto's largest */
  int32_t is_auto; /* k was not given: choose per step (needs the 1.2 cost model) */
  spec_accept_hist *hist; /* auto: the host's decoder memory (ABI 1.3; NULL on older hosts) */
  int32_t chunk;   /* prefill_chunk */
  float w;         /* trust in AR (1) vs diffusion (0), §3 */
  int32_t n_rows;  /* max(chunk, k): the longest commit */
  int32_t *rows;   /* 0, 1, ..., n_rows-1 */
  float *target;   /* [vocab] scratch: the mixed / MASK-free logits */
  tidar_pattern pat[TIDAR_K_MAX + 1]; /* pat[k'] for k' = 1..k */
} tidar_instance;

typedef struct tidar_seq {
  int32_t kind;    /* this step: 0 prefill chunk without masks, 1 last prefill chunk, 2 decode, 3 plain ar */
  int32_t r;       /* prefill: chunk rows; decode: k of this step */
  int32_t nm;      /* prefill: mask rows added */
  int32_t nc;      /* block length: c[0] and nc-1 drafts */
  int32_t real;    /* decode: drafts of this step that are not padding */
  spec_accept acc; /* auto: live acceptance by depth */
  int32_t c[TIDAR_K_MAX];
  int32_t out[TIDAR_K_MAX + 1];
  int64_t steps, accepted; /* decode steps and tokens they emitted, for the debug line */
} tidar_seq;

/* ---- the pattern, built once per k (§5: "precompute masks, avoid per-step host work") ---- */

static int32_t pattern_pairs(int32_t k) {
  /* causal: a rows before row a; group i: i causal rows + k-1 group mates, for k masks each */
  int32_t n = k * (k - 1) / 2;
  for (int32_t i = 1; i <= k; ++i) n += k * (i + k - 1);
  return n;
}

static void pattern_fill(tidar_pattern *p, int32_t k) {
  p->k = k;
  p->n_rows = k + k * k;
  int32_t e = 0, r = 0;
  for (int32_t a = 0; a < k; ++a, ++r) { /* C_a at P + a sees C_0..C_{a-1} */
    p->pos[r] = a;
    p->see_begin[r] = e;
    for (int32_t b = 0; b < a; ++b) p->see[e++] = b;
  }
  for (int32_t i = 1; i <= k; ++i) {
    const int32_t g0 = k + (i - 1) * k; /* first row of G_i */
    for (int32_t m = 0; m < k; ++m, ++r) { /* G_i row m at P + i + m sees C_0..C_{i-1} and G_i */
      p->pos[r] = i + m;
      p->see_begin[r] = e;
      for (int32_t b = 0; b < i; ++b) p->see[e++] = b;
      for (int32_t u = 0; u < k; ++u)
        if (u != m) p->see[e++] = g0 + u;
    }
  }
  p->see_begin[r] = e;
}

/* ---- helpers ---- */

static int read_int(const specd_host_api *api, specd_host *h, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int32_t *out) {
  int64_t v = 0;
  const int rc = api->opt_int(h, key, def, lo, hi, &v);
  if (rc != SPECD_OK) return rc;
  *out = (int32_t)v;
  return SPECD_OK;
}

/* Index of the largest logit other than MASK, lowest index on ties. */
static int32_t argmax_no_mask(const tidar_instance *g, const float *x) {
  int32_t best = g->api->argmax(x, g->vocab);
  if (best != g->mask_id) return best;
  best = -1;
  for (int32_t i = 0; i < g->vocab; ++i)
    if (i != g->mask_id && (best < 0 || x[i] > x[best])) best = i;
  return best;
}

/* One draw from target = w·ar + (1-w)·d (d may be NULL: ar alone), never MASK. */
static int32_t pick(tidar_instance *g, specd_seq *s, const float *ar, const float *d) {
  const specd_host_api *api = g->api;
  const float *t = ar;
  if (d != NULL && g->w < 1.0f) {
    const float w = g->w;
    for (int32_t i = 0; i < g->vocab; ++i) g->target[i] = w * ar[i] + (1.0f - w) * d[i];
    t = g->target;
  }
  int32_t y = api->sample(s, t);
  if (y != g->mask_id) return y;
  /* Rejection: redraw with MASK excluded, i.e. from target conditioned on "not MASK". */
  if (t != g->target) memcpy(g->target, t, (size_t)g->vocab * sizeof(float));
  g->target[g->mask_id] = -INFINITY;
  return api->sample(s, g->target);
}

/* ---- create / destroy ---- */

static void tidar_destroy(void *instance) {
  tidar_instance *g = instance;
  if (g == NULL) return;
  const specd_host_api *api = g->api;
  for (int32_t k = 1; k <= TIDAR_K_MAX; ++k) {
    api->mem_free(g->host, g->pat[k].pos);
    api->mem_free(g->host, g->pat[k].see_begin);
    api->mem_free(g->host, g->pat[k].see);
  }
  api->mem_free(g->host, g->rows);
  api->mem_free(g->host, g->target);
  api->mem_free(g->host, g);
}

static int refuse(const specd_host_api *api, specd_host *h, int32_t code, const char *msg) {
  if (SPECD_HAS(specd_host_api, api, refuse)) return api->refuse(h, code, "%s", msg);
  api->log_msg(h, SPECD_LOG_ERROR, "%s", msg);
  return code;
}

static int tidar_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                        const char *options_json, void **instance) {
  (void)options_json; /* read through api->opt_* */
  *instance = NULL;
  if (!SPECD_HAS(specd_host_api, api, sample) || !SPECD_HAS(specd_model_info, model, logit_shift))
    return SPECD_E_VERSION;
  int64_t def_k = 8;
  double def_w = 1.0;
  if (SPECD_HAS(specd_host_api, api, meta_float)) { /* the defaults the training exported (train_tidar.py) */
    int64_t v = 0;
    double x = 0;
    if (api->meta_int(h, "specd.tidar.block_len", &v) == SPECD_OK && v >= 1) def_k = v > TIDAR_K_MAX ? TIDAR_K_MAX : v;
    if (api->meta_float(h, "specd.tidar.w", &x) == SPECD_OK && x >= 0.0 && x <= 1.0) def_w = x;
  }
  int32_t k = 0, chunk = 0;
  double w = 1.0;
  int rc = read_int(api, h, "k", 0, 1, TIDAR_K_MAX, &k); /* 0: absent, auto */
  if (rc == SPECD_OK) rc = api->opt_float(h, "w", def_w, 0.0, 1.0, &w);
  if (rc == SPECD_OK) rc = read_int(api, h, "prefill_chunk", 256, 1, 4096, &chunk);
  if (rc != SPECD_OK) return rc;
  const int32_t is_auto = k == 0 && SPECD_HAS(specd_host_api, api, seq_note_setting);
  if (k == 0) k = (int32_t)def_k;
  if (model->mask_id < 0 || model->mask_id >= model->vocab)
    return refuse(api, h, SPECD_E_BAD_MODEL,
                  "the model has no MASK token (specd.mask_token_id): tidar needs a TiDAR-trained model "
                  "(make one with scripts/train.sh tidar; specd-add-mask gives an untrained one, to try the decoder)");
  /* A step may not exceed the host's row budget (1.0 hosts that predate max_rows: 1024). */
  const int32_t budget = SPECD_HAS(specd_model_info, model, max_rows) ? model->max_rows : 1024;
  while (k > 1 && k + k * k > budget) --k;
  if (k + k * k > budget) return refuse(api, h, SPECD_E_LIMIT, "the host's row budget is too small for TiDAR");
  if (chunk + k > budget) chunk = budget - k;

  tidar_instance *g = api->mem_alloc(h, sizeof *g);
  if (g == NULL) return SPECD_E_NOMEM;
  memset(g, 0, sizeof *g);
  g->api = api;
  g->host = h;
  g->vocab = model->vocab;
  g->mask_id = model->mask_id;
  g->ctx_len = model->ctx_len;
  g->k = k;
  g->is_auto = is_auto;
  g->hist = is_auto && SPECD_HAS(specd_host_api, api, decoder_memory) ? api->decoder_memory(h, sizeof(spec_accept_hist)) : NULL;
  g->chunk = chunk;
  g->w = (float)w;
  g->n_rows = chunk > k ? chunk : k;
  g->rows = api->mem_alloc(h, (size_t)g->n_rows * sizeof(int32_t));
  g->target = api->mem_alloc(h, (size_t)g->vocab * sizeof(float));
  int ok = g->rows != NULL && g->target != NULL;
  for (int32_t kk = 1; ok && kk <= k; ++kk) {
    tidar_pattern *p = &g->pat[kk];
    const int32_t n = kk + kk * kk;
    p->pos = api->mem_alloc(h, (size_t)n * sizeof(int32_t));
    p->see_begin = api->mem_alloc(h, (size_t)(n + 1) * sizeof(int32_t));
    p->see = api->mem_alloc(h, (size_t)(pattern_pairs(kk) + 1) * sizeof(int32_t));
    ok = p->pos != NULL && p->see_begin != NULL && p->see != NULL;
    if (ok) pattern_fill(p, kk);
  }
  if (!ok) {
    tidar_destroy(g);
    return SPECD_E_NOMEM;
  }
  for (int32_t i = 0; i < g->n_rows; ++i) g->rows[i] = i;
  *instance = g;
  return SPECD_OK;
}

/* ---- sequences ---- */

static int tidar_begin(void *instance, specd_seq *s) {
  const tidar_instance *g = instance;
  const specd_host_api *api = g->api;
  const int32_t *tok = NULL;
  if (api->seq_tokens(s, &tok) <= 0) return api->fail(s, SPECD_E_INVALID_ARG, "empty prompt");
  tidar_seq *st = api->mem_alloc(g->host, sizeof *st);
  if (st == NULL) return api->fail(s, SPECD_E_NOMEM, "out of memory for the sequence state");
  memset(st, 0, sizeof *st);
  spec_accept_init(&st->acc, SPEC_AUTO_PRIOR_P);
  spec_accept_seed(&st->acc, g->hist);
  api->seq_set_user(s, st);
  return SPECD_OK;
}

static void tidar_end(void *instance, specd_seq *s) {
  const tidar_instance *g = instance;
  tidar_seq *st = g->api->seq_user(s);
  if (st == NULL) return;
  spec_accept_keep(g->hist, &st->acc);
  g->api->log_msg(g->host, SPECD_LOG_DEBUG, "k %d: %" PRId64 " decode steps emitted %" PRId64 " tokens", g->k,
                  st->steps, st->accepted);
  g->api->seq_set_user(s, NULL);
  g->api->mem_free(g->host, st);
}

/* auto: this step's k (0: a plain ar step) among those the context margin allows, noted for the
 * run log. Candidate 0 is the plain step; candidate i >= 1 is k = i + 1 (k = 1 drafts nothing). */
static int32_t auto_block(const tidar_instance *g, tidar_seq *st, specd_seq *s, int32_t room) {
  double tokens[TIDAR_K_MAX], cost[TIDAR_K_MAX];
  int32_t n = 1;
  tokens[0] = 1.0;
  cost[0] = g->api->step_cost(g->host, 1);
  for (int32_t k = 2; k <= g->k && k <= room; ++k, ++n) {
    tokens[n] = spec_expected_tokens(&st->acc, k - 1);
    cost[n] = g->api->step_cost(g->host, k + k * k);
  }
  const int32_t c = spec_auto_choose(&st->acc, tokens, cost, n);
  char label[16];
  if (c > 0)
    snprintf(label, sizeof label, "k=%d", (int)(c + 1));
  else
    snprintf(label, sizeof label, "plain");
  g->api->seq_note_setting(s, label);
  return c > 0 ? c + 1 : 0;
}

static int tidar_plan(void *instance, specd_seq *s, specd_batch *b) {
  const tidar_instance *g = instance;
  const specd_host_api *api = g->api;
  tidar_seq *st = api->seq_user(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "plan before begin");
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  if (n > g->ctx_len) {
    api->finish(s, SPECD_FINISH_CONTEXT);
    return SPECD_OK;
  }
  if (kv >= n) return api->fail(s, SPECD_E_INTERNAL, "no pending token (kv %d, tokens %d)", kv, n);

  if (n - kv > 1 || st->nc == 0) { /* prefill (§2.6): causal chunk rows, masks on the last chunk */
    const int32_t r = n - kv < g->chunk ? n - kv : g->chunk;
    const int32_t last = kv + r == n;
    for (int32_t i = 0; i < r; ++i) {
      const int32_t pos = kv + i;
      const int32_t row = api->row_add(b, tok[pos], pos, pos == n - 1 ? SPECD_ROW_LOGITS : 0u);
      if (row < 0) return api->fail(s, row, "prefill row at position %d failed (%d)", pos, row);
      const int rc = api->row_see_all_before(b, row);
      if (rc != SPECD_OK) return api->fail(s, rc, "row_see_all_before failed (%d)", rc);
    }
    int32_t nm = 0;
    if (last) { /* masks at n..n+nm-1 (they must fit the context), seeing the chunk and each other */
      nm = g->ctx_len - n < g->k ? g->ctx_len - n : g->k;
      for (int32_t m = 0; m < nm; ++m) {
        const int32_t row = api->row_add(b, g->mask_id, n + m, SPECD_ROW_LOGITS);
        if (row < 0) return api->fail(s, row, "mask row at position %d failed (%d)", n + m, row);
      }
      for (int32_t row = r; row < r + nm; ++row)
        for (int32_t v = 0; v < r + nm; ++v) {
          const int rc = v == row ? SPECD_OK : api->row_see(b, row, v);
          if (rc != SPECD_OK) return api->fail(s, rc, "row_see failed (%d)", rc);
        }
    }
    st->kind = last ? 1 : 0;
    st->r = r;
    st->nm = nm;
    return SPECD_OK;
  }

  /* decode (§2.2): k shrinks to the drafts at hand (auto: may pad past them) and to the context
   * margin kv + 2k - 1 < ctx_len */
  const int32_t room = (g->ctx_len - kv) / 2;
  int32_t k = g->is_auto ? auto_block(g, st, s, room) : st->nc;
  if (k > g->k) k = g->k;
  if (room < k) k = room;
  if (k < 1) { /* no room for a mask group: a plain ar step */
    const int32_t row = api->row_add(b, tok[kv], kv, SPECD_ROW_LOGITS);
    if (row < 0) return api->fail(s, row, "row at position %d failed (%d)", kv, row);
    st->kind = 3;
    st->r = 0;
    return SPECD_OK;
  }
  if (st->c[0] != tok[n - 1]) return api->fail(s, SPECD_E_INTERNAL, "block out of step with the sequence");
  st->real = (st->nc < k ? st->nc : k) - 1;
  for (int32_t a = st->nc; a < k; ++a) st->c[a] = st->c[st->nc - 1]; /* auto's padding, see the top */
  const tidar_pattern *p = &g->pat[k];
  for (int32_t r = 0; r < p->n_rows; ++r) {
    const int32_t token = r < k ? st->c[r] : g->mask_id;
    const int32_t row = api->row_add(b, token, kv + p->pos[r], SPECD_ROW_LOGITS);
    if (row != r) return api->fail(s, row < 0 ? row : SPECD_E_INTERNAL, "row %d at position %d failed (%d)", r,
                                   kv + p->pos[r], row);
  }
  for (int32_t r = 0; r < p->n_rows; ++r)
    for (int32_t e = p->see_begin[r]; e < p->see_begin[r + 1]; ++e) {
      const int rc = api->row_see(b, r, p->see[e]);
      if (rc != SPECD_OK) return api->fail(s, rc, "row_see failed (%d)", rc);
    }
  st->kind = 2;
  st->r = k;
  return SPECD_OK;
}

static int tidar_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  tidar_instance *g = instance;
  const specd_host_api *api = g->api;
  tidar_seq *st = api->seq_user(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "accept before begin");
  const int32_t kind = st->kind;
  if (kind == 0) return api->commit(s, o, g->rows, st->r); /* a prefill chunk: nothing to emit yet */
  if (kind == 1 || kind == 3) { /* the last prefill chunk (§2.6), or a plain ar step */
    const int32_t r = kind == 1 ? st->r : 1, nm = kind == 1 ? st->nm : 0;
    const float *ar = api->out_logits(o, r - 1);
    if (ar == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits for row %d", r - 1);
    const int rc = api->commit(s, o, g->rows, r);
    if (rc != SPECD_OK) return rc;
    const int32_t y = pick(g, s, ar, nm > 0 ? api->out_logits(o, r) : NULL);
    if (y < 0) return y;
    st->c[0] = y;
    st->nc = 1;
    for (int32_t m = 1; m < nm; ++m) {
      const float *d = api->out_logits(o, r + m);
      if (d == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits for mask row %d", r + m);
      st->c[st->nc++] = argmax_no_mask(g, d);
    }
    const int32_t taken = api->emit(s, &st->c[0], 1);
    return taken < 0 ? taken : SPECD_OK;
  }
  /* decode (§2.5, §3): target(i) = w·AR_{i-1} + (1-w)·D_{i,0}; AR_a is row a, D_{i,m} row k+(i-1)k+m */
  const int32_t k = st->r;
  int32_t j = 1, y = 0;
  for (int32_t i = 1;; ++i) {
    const float *ar = api->out_logits(o, i - 1);
    const float *d = api->out_logits(o, k + (i - 1) * k);
    if (ar == NULL || d == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits for group %d", i);
    y = pick(g, s, ar, d);
    if (y < 0) return y;
    if (i >= k || y != st->c[i]) break;
    ++j;
  }
  const int rc = api->commit(s, o, g->rows, j); /* the causal rows of c[0..j): exactly the accepted prefix (§4) */
  if (rc != SPECD_OK) return rc;
  for (int32_t i = 1; i < j; ++i) st->out[i - 1] = st->c[i];
  st->out[j - 1] = y;
  st->steps++;
  st->accepted += j;
  spec_accept_record(&st->acc, st->real, j - 1);
  /* next block (§2.5): c' = [y, argmax D_{j,1..k-1}] from G_j, which saw exactly c[0..j) */
  st->c[0] = y;
  st->nc = k;
  for (int32_t m = 1; m < k; ++m) {
    const float *d = api->out_logits(o, k + (j - 1) * k + m);
    if (d == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits for group %d row %d", j, m);
    st->c[m] = argmax_no_mask(g, d);
  }
  const int32_t taken = api->emit(s, st->out, j);
  return taken < 0 ? taken : SPECD_OK;
}

/* What create() reads (ABI 1.2; tests/test_decoder_options.cpp checks it against the code). */
static const specd_option_desc tidar_options[] = {
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "k", "0: auto, chosen each step", "[1, 16]",
     "tokens drafted per step; left out: auto (2 up to the trained block length, specd.tidar.block_len, "
     "or plain steps when drafts do not pay)"},
    {sizeof(specd_option_desc), SPECD_OPTION_FLOAT, "w", "the trained weight (specd.tidar.w), else 1", "[0, 1]",
     "trust in the autoregressive over the diffusion prediction; 1 is lossless, below 1 lossy"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "prefill_chunk", "256", "[1, 4096]", "prompt tokens per forward"},
};

static const specd_decoder tidar_decoder = {
    SPECD_DECODER_HEAD,
    .name = "tidar",
    .version = "1.1.0",
    .description = "TiDAR: diffusion drafts verified autoregressively in one forward; lossless with w = 1 "
                   "(options: k (absent: auto), w, prefill_chunk)",
    .create = tidar_create,
    .destroy = tidar_destroy,
    .begin = tidar_begin,
    .plan = tidar_plan,
    .accept = tidar_accept,
    .end = tidar_end,
    .options = tidar_options,
    .n_options = sizeof tidar_options / sizeof tidar_options[0],
    .flags = SPECD_DECODER_LOSSLESS, /* with the default w = 1 */
    .needs = "a TiDAR-trained model with a MASK token (make one with scripts/train.sh tidar)",
};

SPECD_EXPORT const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor; /* 1.1's meta_int and refuse are used only when SPECD_HAS says they exist */
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &tidar_decoder : NULL;
}
