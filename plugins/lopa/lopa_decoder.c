/* lopa: D2F pipelined block decoding for diffusion LLMs (k = 0) and LoPA lookahead branches (k ≥ 1).
 *
 * docs/methods/lopa.md §1-§3. Needs a model with a MASK token (model->mask_id; SPECD_E_UNSUPPORTED
 * otherwise). One round = one forward (§3.2 step 8, logit reuse):
 *   plan    per candidate (the lookahead branches B_1..B_m, then the anchor A): the block-add and
 *           activation rules (§2.3 steps 1-2); then rows (lopa_logic.h, lopa_layout_build): the
 *           to_cache segment [kv, seg_end) — the prompt in round 1, later the blocks retired last
 *           round — and each candidate's active blocks, with isolated visibility (§3.4). While the
 *           prompt does not fit one step, causal prefill chunks come first.
 *   accept  score the candidates (§3.2 step 5), pick the winner (step 6), commit the winner's
 *           segment rows (step 7), fill the winner with the anchor rule from its own logits (§2.3
 *           step 5), retire finished blocks strictly left to right and emit their tokens, finish
 *           when nothing is left (completion is decided on the winner after its fill), and spawn the
 *           next round's lookaheads from the winner's remaining top-conf positions (step 10).
 * A block's tokens are emitted in the accept that retires it and its K/V committed by the next
 * forward (§1.5: the window starts at the first to_cache block); steps that only fill masks neither
 * commit nor emit (at most bs - 1 in a row). Options (create): k (0, 0..16), block (the model's
 * specd.dllm.block_len read with meta_int, else 8; 1..256),
 * tau_add (0.1), tau_act (0.95), tau_conf (0.9, 0..2), confidence (prob|margin|neg_entropy, prob),
 * attention (block-causal|full-window; block-causal for k = 0, full-window for k ≥ 1),
 * alpha (0, 0..1: weight of a branch's creation confidence in its score, REF selection_conf_alpha;
 * the anchor's is 1, so alpha trades the lookahead's TPF for the anchor's quality),
 * force_anchor (0, 0..1: the anchor always wins, §3.3), auto (0, 0..1: choose each round's branch
 * count up to k, 4 when k is not given, or plain one-row steps, from live progress and the host's
 * step_cost; lopa_auto.h; needs ABI 1.2, attention then defaults to full-window). A plain step's
 * round has no active block: its one segment row is the token the last one chose, committed, and
 * its logits choose the next (lopa_append_plain). Nothing is allocated after begin(). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <specd/decoder.h>

#include "lopa_auto.h"
#include "lopa_logic.h"

#define LOPA_AUTO_CAP 4 /* auto's most branches when k is not given */

typedef struct lopa_instance {
  const specd_host_api *api;
  specd_host *host;
  const specd_model_info *model;
  int32_t k, bs, strategy, full_window, force_anchor, max_rows; /* k: fixed, or auto's cap */
  int32_t is_auto;
  lopa_auto_hist *auto_hist; /* the host's decoder memory (ABI 1.3; NULL on older hosts or without auto) */
  float tau_add, tau_act, tau_conf, alpha;
} lopa_instance;

typedef struct lopa_seq {
  lopa_config cfg;
  lopa_path pool[LOPA_MAX_CAND + 1]; /* candidate slots; the winner stays in place as the next anchor */
  lopa_path *cand[LOPA_MAX_CAND];
  int32_t n_cand;
  lopa_layout L;
  int32_t prefill;       /* rows of a causal prompt chunk planned this step (0: a decoding round) */
  int32_t emitted_upto;  /* absolute position: tokens before it were emitted */
  int32_t have_last;     /* last_logit holds the logits of the row at kv - 1 (§1.3) */
  int32_t *commit_rows;  /* max_rows */
  int32_t *tok_at;       /* [gen_cap] per position - P */
  float *prob_at, *conf_at;
  float *last_logit, *scratch, *probs; /* [vocab] each */
  float scores[LOPA_MAX_CAND];
  int32_t look[LOPA_MAX_LOOKAHEAD];
  int64_t rounds, fills, lookahead_wins;
  lopa_auto autos;
} lopa_seq;

/* Refuse the request with a message for the client (ABI 1.1 hosts), else a log line. */
static int refuse(const specd_host_api *api, specd_host *h, int32_t code, const char *fmt, ...) SPECD_PRINTF(4, 5);
static int refuse(const specd_host_api *api, specd_host *h, int32_t code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (SPECD_HAS(specd_host_api, api, refuse) && api->refuse != NULL) return api->refuse(h, code, "%s", msg);
  api->log_msg(h, SPECD_LOG_WARN, "%s", msg);
  return code;
}

static int parse_choice(const char *s, const char *const *names, int32_t n, int32_t *out) {
  for (int32_t i = 0; i < n; ++i)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return SPECD_OK;
    }
  return SPECD_E_BAD_OPTION;
}

static int read_options(const specd_host_api *api, specd_host *h, lopa_instance *g) {
  int64_t k = 0, bs = 0, force = 0, bs_model = 8, is_auto = 0;
  /* The block size the model was trained with (specd.dllm.block_len, ABI 1.1 hosts), else 8. */
  if (!SPECD_HAS(specd_host_api, api, meta_int) || api->meta_int == NULL ||
      api->meta_int(h, "specd.dllm.block_len", &bs_model) != SPECD_OK || bs_model < 1 || bs_model > 256)
    bs_model = 8;
  double ta = 0, tc = 0, tf = 0, al = 0;
  const char *conf = NULL, *att = NULL;
  int rc = api->opt_int(h, "k", 0, 0, LOPA_MAX_LOOKAHEAD, &k);
  if (rc == SPECD_OK) rc = api->opt_int(h, "block", bs_model, 1, 256, &bs);
  if (rc == SPECD_OK) rc = api->opt_float(h, "tau_add", 0.1, 0.0, 1.0, &ta);
  if (rc == SPECD_OK) rc = api->opt_float(h, "tau_act", 0.95, 0.0, 1.0, &tc);
  if (rc == SPECD_OK) rc = api->opt_float(h, "tau_conf", 0.9, 0.0, 2.0, &tf);
  if (rc == SPECD_OK) rc = api->opt_float(h, "alpha", 0.0, 0.0, 1.0, &al);
  if (rc == SPECD_OK) rc = api->opt_int(h, "force_anchor", 0, 0, 1, &force);
  if (rc == SPECD_OK) rc = api->opt_int(h, "auto", 0, 0, 1, &is_auto);
  if (rc == SPECD_OK) rc = api->opt_string(h, "confidence", "prob", &conf);
  if (rc == SPECD_OK) rc = api->opt_string(h, "attention", k > 0 || is_auto ? "full-window" : "block-causal", &att);
  if (rc != SPECD_OK) return rc;
  if (is_auto && !SPECD_HAS(specd_host_api, api, seq_note_setting))
    return refuse(api, h, SPECD_E_BAD_OPTION, "option 'auto' needs a host with decoder ABI 1.2 (its cost model)");
  if (is_auto && k == 0) k = LOPA_AUTO_CAP;
  static const char *const conf_names[] = {"prob", "margin", "neg_entropy"};
  static const char *const att_names[] = {"block-causal", "full-window"};
  if (parse_choice(conf, conf_names, 3, &g->strategy) != SPECD_OK)
    return refuse(api, h, SPECD_E_BAD_OPTION, "option 'confidence' must be prob, margin or neg_entropy, not '%s'", conf);
  if (parse_choice(att, att_names, 2, &g->full_window) != SPECD_OK)
    return refuse(api, h, SPECD_E_BAD_OPTION, "option 'attention' must be block-causal or full-window, not '%s'", att);
  g->k = (int32_t)k;
  g->bs = (int32_t)bs;
  g->force_anchor = (int32_t)force;
  g->is_auto = (int32_t)is_auto;
  g->tau_add = (float)ta;
  g->tau_act = (float)tc;
  g->tau_conf = (float)tf;
  g->alpha = (float)al;
  return SPECD_OK;
}

static int lopa_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                       const char *options_json, void **instance) {
  (void)options_json; /* read through api->opt_* */
  *instance = NULL;
  if (!SPECD_HAS(specd_host_api, api, argmax) || !SPECD_HAS(specd_model_info, model, logit_shift))
    return SPECD_E_VERSION;
  lopa_instance tmp;
  memset(&tmp, 0, sizeof tmp);
  const int rc = read_options(api, h, &tmp);
  if (rc != SPECD_OK) return rc;
  if (model->mask_id < 0 || model->mask_id >= model->vocab)
    return refuse(api, h, SPECD_E_UNSUPPORTED, "model %s has no MASK token (specd.mask_token_id): lopa needs a diffusion (D2F-trained) model "
                  "(make one with scripts/train.sh d2f)",
                  model->path ? model->path : "?");
  tmp.max_rows = SPECD_HAS(specd_model_info, model, max_rows) ? model->max_rows : 1024;
  if (tmp.max_rows < tmp.bs + 1)
    return refuse(api, h, SPECD_E_BAD_OPTION, "option 'block' (%d) needs %d rows per step; the host allows %d",
                  (int)tmp.bs, (int)tmp.bs + 1, (int)tmp.max_rows);
  lopa_instance *g = api->mem_alloc(h, sizeof *g);
  if (g == NULL) return SPECD_E_NOMEM;
  *g = tmp;
  if (g->is_auto && SPECD_HAS(specd_host_api, api, decoder_memory))
    g->auto_hist = api->decoder_memory(h, sizeof(lopa_auto_hist));
  g->api = api;
  g->host = h;
  g->model = model;
  *instance = g;
  return SPECD_OK;
}

static void lopa_destroy(void *instance) {
  lopa_instance *g = instance;
  if (g != NULL) g->api->mem_free(g->host, g);
}

/* Carve n bytes (16-aligned) from *cur. */
static void *carve(char **cur, size_t n) {
  void *p = *cur;
  *cur += (n + 15) / 16 * 16;
  return p;
}

static int lopa_begin(void *instance, specd_seq *s) {
  const lopa_instance *g = instance;
  const specd_host_api *api = g->api;
  const specd_model_info *m = g->model;
  const int32_t P = api->seq_prompt_len(s);
  if (P <= 0) return api->fail(s, SPECD_E_INVALID_ARG, "empty prompt");
  int32_t gen_cap = api->seq_remaining(s);
  if (gen_cap > m->ctx_len - P) gen_cap = m->ctx_len - P;
  if (gen_cap < 1) return api->fail(s, SPECD_E_CONTEXT, "no room to generate after %d prompt tokens", P);
  /* auto's plain steps may open one block of their own (lopa_append_plain) */
  const int32_t max_blocks = (gen_cap + g->bs - 1) / g->bs + (g->is_auto ? 1 : 0);
  const int32_t n_slots = g->k + 2; /* k + 1 candidates and the slot the next lookahead is spawned into */
  const size_t V = (size_t)m->vocab;
  size_t bytes = sizeof(lopa_seq) + 16;
  bytes += (size_t)n_slots * (((size_t)max_blocks * sizeof(lopa_block) + 15) / 16 * 16 + ((size_t)gen_cap * 4 + 15) / 16 * 16);
  bytes += ((size_t)g->max_rows * (sizeof(lopa_row) + 4) + 32);
  bytes += 3 * (((size_t)gen_cap * 4 + 15) / 16 * 16) + 3 * ((V * 4 + 15) / 16 * 16);
  char *mem = api->mem_alloc(g->host, bytes);
  if (mem == NULL) return api->fail(s, SPECD_E_NOMEM, "out of memory for the block state (%zu bytes)", bytes);
  memset(mem, 0, bytes);
  char *cur = mem;
  lopa_seq *st = carve(&cur, sizeof(lopa_seq));
  lopa_config *c = &st->cfg;
  c->bs = g->bs;
  c->prompt_len = P;
  c->gen_cap = gen_cap;
  c->max_blocks = max_blocks;
  c->mask_id = m->mask_id;
  c->eos_id = m->eos_id;
  c->vocab = m->vocab;
  c->tau_add = g->tau_add;
  c->tau_act = g->tau_act;
  c->tau_conf = g->tau_conf;
  c->alpha = g->alpha;
  c->strategy = g->strategy;
  c->full_window = g->full_window;
  c->shift = m->logit_shift ? 1 : 0;
  c->max_rows = g->max_rows;
  for (int32_t i = 0; i < n_slots; ++i) {
    st->pool[i].blocks = carve(&cur, (size_t)max_blocks * sizeof(lopa_block));
    st->pool[i].tok = carve(&cur, (size_t)gen_cap * 4);
    lopa_path_reset(&st->pool[i]);
  }
  st->L.rows = carve(&cur, (size_t)g->max_rows * sizeof(lopa_row));
  st->commit_rows = carve(&cur, (size_t)g->max_rows * 4);
  st->tok_at = carve(&cur, (size_t)gen_cap * 4);
  st->prob_at = carve(&cur, (size_t)gen_cap * 4);
  st->conf_at = carve(&cur, (size_t)gen_cap * 4);
  st->last_logit = carve(&cur, V * 4);
  st->scratch = carve(&cur, V * 4);
  st->probs = carve(&cur, V * 4);
  st->cand[0] = &st->pool[0]; /* round 1: the anchor alone, holding only the prompt */
  st->n_cand = 1;
  st->emitted_upto = P;
  lopa_auto_init(&st->autos);
  if (g->is_auto) {
    lopa_auto_seed(&st->autos, g->auto_hist);
    /* Round 1 can have no branches (there is no filled winner yet): plain steps or D2F. */
    c->hold = c->shift && lopa_auto_choose(&st->autos, api, g->host, s, 0, 1, g->bs) == LOPA_AUTO_PLAIN;
  }
  api->seq_set_user(s, st);
  return SPECD_OK;
}

static void lopa_end(void *instance, specd_seq *s) {
  const lopa_instance *g = instance;
  lopa_seq *st = g->api->seq_user(s);
  if (st == NULL) return;
  if (g->is_auto) lopa_auto_keep(g->auto_hist, &st->autos);
  g->api->log_msg(g->host, SPECD_LOG_DEBUG, "%" PRId64 " rounds, %" PRId64 " fills, %" PRId64 " lookahead wins",
                  st->rounds, st->fills, st->lookahead_wins);
  g->api->seq_set_user(s, NULL);
  g->api->mem_free(g->host, st);
}

/* A causal chunk of the prompt, when the prompt and the first block do not fit one step. */
static int plan_prefill(const lopa_instance *g, lopa_seq *st, specd_seq *s, specd_batch *b, int32_t kv) {
  const specd_host_api *api = g->api;
  const int32_t *tok = NULL;
  api->seq_tokens(s, &tok);
  int32_t n = st->cfg.prompt_len - 1 - kv; /* leave the last prompt token for round 1 (its logits) */
  if (n > g->max_rows) n = g->max_rows;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t row = api->row_add(b, tok[kv + i], kv + i, 0u);
    if (row < 0) return api->fail(s, row, "prefill row at position %d failed (%d)", kv + i, row);
    const int rc = api->row_see_all_before(b, row);
    if (rc != SPECD_OK) return rc;
    st->commit_rows[i] = row;
  }
  st->prefill = n;
  return SPECD_OK;
}

static int add_rows(const lopa_instance *g, lopa_seq *st, specd_seq *s, specd_batch *b) {
  const specd_host_api *api = g->api;
  const lopa_layout *L = &st->L;
  for (int32_t i = 0; i < L->n_rows; ++i) {
    const lopa_row *r = &L->rows[i];
    const int32_t row = api->row_add(b, r->token, r->pos, r->logits ? SPECD_ROW_LOGITS : 0u);
    if (row != i) return api->fail(s, row < 0 ? row : SPECD_E_INTERNAL, "row at position %d failed (%d)", r->pos, row);
  }
  /* Visibility (§3.4): a row looks only at shared rows and rows of its own candidate. */
  const int32_t n_shared = L->shared ? L->seg_end - L->kv : 0;
  for (int32_t i = 0; i < L->n_rows; ++i) {
    const int32_t cand = L->rows[i].cand;
    for (int32_t range = 0; range < 2; ++range) {
      const int32_t lo = range == 0 ? L->shared_base : (cand >= 0 ? L->cand_base[cand] : 0);
      const int32_t hi = range == 0 ? L->shared_base + n_shared : (cand >= 0 ? lo + L->cand_rows[cand] : 0);
      for (int32_t j = lo; j < hi; ++j) {
        if (j == i || !lopa_layout_sees(L, &st->cfg, i, j)) continue;
        const int rc = api->row_see(b, i, j);
        if (rc != SPECD_OK) return rc;
      }
    }
  }
  return SPECD_OK;
}

static int lopa_plan(void *instance, specd_seq *s, specd_batch *b) {
  const lopa_instance *g = instance;
  const specd_host_api *api = g->api;
  lopa_seq *st = api->seq_user(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "plan before begin");
  const lopa_config *c = &st->cfg;
  const int32_t kv = api->seq_kv_len(s);
  st->prefill = 0;
  if (kv < c->prompt_len && c->prompt_len - kv + c->bs > g->max_rows) return plan_prefill(g, st, s, b, kv);
  for (int32_t i = 0; i < st->n_cand; ++i) lopa_prepare(st->cand[i], c, kv);
  const int32_t *prompt = NULL;
  api->seq_tokens(s, &prompt);
  /* Too many rows for the host: drop lookaheads from the lowest-ranked (the anchor stays last). */
  while (lopa_layout_build(&st->L, st->cand, st->n_cand, c, kv, prompt) < 0) {
    if (st->n_cand == 1) return api->fail(s, SPECD_E_LIMIT, "the anchor's window exceeds %d rows", g->max_rows);
    st->cand[st->n_cand - 2] = st->cand[st->n_cand - 1];
    st->n_cand--;
  }
  if (st->L.n_rows == 0) return api->fail(s, SPECD_E_INTERNAL, "empty round at kv %d", kv);
  return add_rows(g, st, s, b);
}

/* Shifted logits of masked position pos for candidate b (§1.3): the row of pos - shift, or last_logit. */
static const float *logits_for(const lopa_instance *g, lopa_seq *st, const specd_outputs *o, int32_t b, int32_t pos) {
  const int32_t q = pos - st->cfg.shift;
  const int32_t row = lopa_layout_row(&st->L, b, q);
  if (row >= 0) return g->api->out_logits(o, row);
  return q == st->L.kv - 1 && st->have_last ? st->last_logit : NULL;
}

/* p for one position: the request's filtered distribution when sampling, else softmax; MASK excluded. */
static const float *position_probs(const lopa_instance *g, lopa_seq *st, specd_seq *s, const float *logits, int greedy) {
  const lopa_config *c = &st->cfg;
  if (greedy) {
    lopa_probs(logits, c->vocab, c->mask_id, st->probs);
  } else {
    memcpy(st->scratch, logits, (size_t)c->vocab * sizeof(float));
    st->scratch[c->mask_id] = -INFINITY;
    g->api->probs(s, st->scratch, st->probs);
  }
  return st->probs;
}

/* conf (and, with fill, token and prob) at every masked position of candidate b's active blocks. */
static int score_positions(const lopa_instance *g, lopa_seq *st, specd_seq *s, const specd_outputs *o, int32_t b,
                           int fill) {
  const lopa_config *c = &st->cfg;
  const lopa_path *p = st->cand[b];
  const int greedy = g->api->seq_sampling(s)->temperature <= 0.0f;
  for (int32_t j = 0; j < p->n_blocks; ++j) {
    const lopa_block *bl = &p->blocks[j];
    if (bl->state != LOPA_ACTIVE) continue;
    for (int32_t q = bl->start; q < bl->start + bl->len; ++q) {
      const int32_t i = q - c->prompt_len;
      if (p->tok[i] != c->mask_id) continue;
      const float *lg = logits_for(g, st, o, b, q);
      if (lg == NULL) return g->api->fail(s, SPECD_E_INTERNAL, "no logits for position %d", q);
      const float *pr = position_probs(g, st, s, lg, greedy);
      const int32_t best = lopa_argmax(pr, c->vocab);
      st->conf_at[i] = lopa_conf(pr, c->vocab, best, c->strategy);
      if (!fill) continue;
      int32_t t = best;
      if (!greedy) {
        t = g->api->sample(s, st->scratch);
        if (t < 0 || t >= c->vocab || t == c->mask_id) return g->api->fail(s, SPECD_E_INTERNAL, "sampled %d", t);
      }
      st->tok_at[i] = t;
      st->prob_at[i] = pr[t];
      if (c->strategy == LOPA_CONF_PROB) st->conf_at[i] = pr[t];
    }
  }
  return SPECD_OK;
}

/* A plain step's token: the prediction of the last committed row (last_logit, which this round's
 * commit just set), greedy or sampled as a masked position's would be. */
static int plain_token(const lopa_instance *g, lopa_seq *st, specd_seq *s, int32_t *t) {
  const lopa_config *c = &st->cfg;
  const int greedy = g->api->seq_sampling(s)->temperature <= 0.0f;
  if (!st->have_last) return g->api->fail(s, SPECD_E_INTERNAL, "a plain step without the last row's logits");
  const float *pr = position_probs(g, st, s, st->last_logit, greedy);
  *t = greedy ? lopa_argmax(pr, c->vocab) : g->api->sample(s, st->scratch);
  if (*t < 0 || *t >= c->vocab || *t == c->mask_id) return g->api->fail(s, SPECD_E_INTERNAL, "sampled %d", (int)*t);
  return SPECD_OK;
}

static lopa_path *free_slot(lopa_seq *st, const lopa_path *w, int32_t used) {
  /* The pool has k + 2 slots: w and the `used` lookaheads spawned so far take some of them. */
  int32_t seen = 0;
  for (int32_t i = 0; i < LOPA_MAX_CAND + 1; ++i) {
    lopa_path *p = &st->pool[i];
    if (p == w || p->blocks == NULL) continue;
    if (seen++ == used) return p;
  }
  return NULL;
}

/* §3.2 steps 5-6: branch confidence of every candidate and the winner (the anchor when alone or forced). */
static int pick_winner(const lopa_instance *g, lopa_seq *st, specd_seq *s, const specd_outputs *o, int32_t *w) {
  *w = st->n_cand - 1;
  if (st->n_cand == 1 || g->force_anchor) return SPECD_OK;
  for (int32_t b = 0; b < st->n_cand; ++b) {
    const int rc = score_positions(g, st, s, o, b, 0);
    if (rc != SPECD_OK) return rc;
    st->scores[b] = lopa_branch_score(st->cand[b], &st->cfg, st->conf_at);
  }
  *w = lopa_pick_winner(st->scores, st->n_cand, 0);
  if (*w != st->n_cand - 1) st->lookahead_wins++;
  return SPECD_OK;
}

/* Step 7: commit the winner's segment rows; the segment's last row's logits become last_logit. */
static int commit_segment(const lopa_instance *g, lopa_seq *st, specd_seq *s, const specd_outputs *o, int32_t w) {
  const specd_host_api *api = g->api;
  const lopa_layout *L = &st->L;
  const int32_t U = L->seg_end - L->kv;
  if (U <= 0) return SPECD_OK;
  for (int32_t i = 0; i < U; ++i) st->commit_rows[i] = lopa_layout_row(L, w, L->kv + i);
  const float *last = api->out_logits(o, st->commit_rows[U - 1]);
  if (last == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits on the segment's last row");
  /* With U > 0 every masked position of this round lies past the segment and reads window rows, so
   * replacing last_logit before the fill is safe. */
  memcpy(st->last_logit, last, (size_t)st->cfg.vocab * sizeof(float));
  st->have_last = 1;
  return api->commit(s, o, st->commit_rows, U);
}

/* Step 10: the next candidates from the filled winner W, lookaheads first, W (the anchor) last.
 * With auto, also whether the next rounds are plain steps (hold: no new block). */
static void spawn_next(const lopa_instance *g, lopa_seq *st, specd_seq *s, lopa_path *W) {
  int32_t k = g->k;
  if (g->is_auto) {
    k = lopa_auto_choose(&st->autos, g->api, g->host, s, g->k, st->cfg.shift, g->bs);
    st->cfg.hold = k == LOPA_AUTO_PLAIN;
    if (k == LOPA_AUTO_PLAIN) k = 0; /* the blocks in flight finish as D2F */
  }
  const int32_t m = lopa_top_positions(W, &st->cfg, st->conf_at, k, st->look);
  lopa_path *out[LOPA_MAX_LOOKAHEAD];
  for (int32_t j = 0; j < m; ++j) out[j] = free_slot(st, W, j);
  lopa_spawn(W, &st->cfg, st->look, m, st->tok_at, st->conf_at, out);
  for (int32_t j = 0; j < m; ++j) st->cand[j] = out[j];
  st->cand[m] = W;
  st->n_cand = m + 1;
}

static int lopa_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  const lopa_instance *g = instance;
  const specd_host_api *api = g->api;
  lopa_seq *st = api->seq_user(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "accept before begin");
  const lopa_config *c = &st->cfg;
  if (st->prefill > 0) return api->commit(s, o, st->commit_rows, st->prefill);
  st->rounds++;
  /* a plain step: no masked position was in this round (plan adds no block under hold) */
  const int plain = c->hold && lopa_masked(st->cand[st->n_cand - 1]) == 0;
  int32_t w = 0;
  int rc = pick_winner(g, st, s, o, &w);
  if (rc == SPECD_OK) rc = commit_segment(g, st, s, o, w);
  /* Step 8: the anchor fill of the winner from its own logits (logit reuse: no second forward). */
  if (rc == SPECD_OK) rc = score_positions(g, st, s, o, w, 1);
  if (rc != SPECD_OK) return rc;
  lopa_path *W = st->cand[w];
  lopa_mark_cached(W);
  const int32_t filled = lopa_fill(W, c, st->tok_at, st->prob_at, st->conf_at);
  st->fills += filled;
  if (g->is_auto && !plain) {
    /* a winning lookahead brought its one pre-filled position: part of this round's progress */
    lopa_auto_record(&st->autos, st->n_cand - 1, filled + (w != st->n_cand - 1));
    lopa_auto_note_layout(&st->autos, st->L.shared ? st->L.seg_end - st->L.kv : 0, st->L.cand_rows[st->n_cand - 1]);
  }
  W->look_pos = -1;
  W->creation_conf = 1.0f;
  /* Step 9 and §1.5: only the anchor rule retires blocks, left to right; what retired is emitted. */
  lopa_retire(W);
  if (plain && !lopa_done(W, c)) {
    int32_t t = 0;
    rc = plain_token(g, st, s, &t);
    if (rc != SPECD_OK) return rc;
    if (lopa_append_plain(W, c, t) != 0) return api->fail(s, SPECD_E_INTERNAL, "no room for a plain step's token");
  }
  const int32_t end = lopa_seg_end(W, c);
  if (end > st->emitted_upto) {
    const int32_t taken = api->emit(s, W->tok + (st->emitted_upto - c->prompt_len), end - st->emitted_upto);
    if (taken < 0) return taken;
    st->emitted_upto = end;
    if (api->seq_finished(s)) return SPECD_OK;
  }
  /* Completion is decided on the winner after its fill (§8.9 PROPOSAL), never on a lookahead. */
  if (lopa_done(W, c)) {
    api->finish(s, SPECD_FINISH_DECODER);
    return SPECD_OK;
  }
  spawn_next(g, st, s, W);
  return SPECD_OK;
}

/* What create() reads (ABI 1.2; tests/test_decoder_options.cpp checks it against the code). */
static const specd_option_desc lopa_options[] = {
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "k", "0", "[0, 16]", "LoPA lookahead branches per round; 0: plain D2F"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "block", "the trained block length (specd.dllm.block_len), else 8", "[1, 256]",
     "tokens per block"},
    {sizeof(specd_option_desc), SPECD_OPTION_FLOAT, "tau_add", "0.1", "[0, 1]", "progress of the last block at which a new one starts"},
    {sizeof(specd_option_desc), SPECD_OPTION_FLOAT, "tau_act", "0.95", "[0, 1]", "progress at which a block becomes fully active"},
    {sizeof(specd_option_desc), SPECD_OPTION_FLOAT, "tau_conf", "0.9", "[0, 2]", "confidence at which a masked token is filled"},
    {sizeof(specd_option_desc), SPECD_OPTION_FLOAT, "alpha", "0", "[0, 1]", "weight of a branch's creation confidence in its score (the anchor's is 1)"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "force_anchor", "0", "[0, 1]", "1: the anchor branch always wins"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "auto", "0", "[0, 1]",
     "1: choose k each step for the most expected tokens per second (changes the output: lopa is lossy)"},
    {sizeof(specd_option_desc), SPECD_OPTION_STRING, "confidence", "prob", "prob|margin|neg_entropy", "how a prediction's confidence is measured"},
    {sizeof(specd_option_desc), SPECD_OPTION_STRING, "attention", "full-window with k > 0, else block-causal",
     "block-causal|full-window", "what the blocks in flight may attend to"},
};

static const specd_decoder lopa_decoder = {
    SPECD_DECODER_HEAD,
    .name = "lopa",
    .version = "1.1.0",
    .description = "D2F pipelined block decoding for diffusion LMs and LoPA lookahead branches, lossy (options: k, "
                   "block, tau_add, tau_act, tau_conf, confidence, attention, alpha, force_anchor, auto)",
    .create = lopa_create,
    .destroy = lopa_destroy,
    .begin = lopa_begin,
    .plan = lopa_plan,
    .accept = lopa_accept,
    .end = lopa_end,
    .options = lopa_options,
    .n_options = sizeof lopa_options / sizeof lopa_options[0],
    .flags = 0, /* lossy: fills tokens by confidence, so its output differs from ar's */
    .needs = "a diffusion (D2F-trained) model with a MASK token (make one with scripts/train.sh d2f)",
};

SPECD_EXPORT const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_minor; /* everything used here is in 1.0 */
  return host_abi_major == SPECD_DECODER_ABI_MAJOR ? &lopa_decoder : NULL;
}
