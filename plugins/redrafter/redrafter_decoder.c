/* redrafter: Recurrent Drafter speculative decoding (docs: methods/redrafter.md), lossless.
 *
 * Per step, with n = seq_tokens(), kv = seq_kv_len():
 *   plan    finish(CONTEXT) if n > ctx_len. With the prompt pending: a prefill chunk as ar, the
 *           last prompt row with logits and hidden state. With one token g0 pending (emitted,
 *           not in K/V): beam search with the drafter from (h, g0) -> beams[W][L'] (§3), packed
 *           into a prefix tree (§4); one row per tree node at kv + depth, each seeing its
 *           ancestors (the tree mask, §4.3), all with logits and hidden state. L' = min(L,
 *           tokens left, positions left); L' = 1 is a plain ar step.
 *   accept  walk the tree (redrafter_accept.h: exact by default, reference optional), commit the
 *           rows of the accepted path in root-to-leaf order (their K/V are what ar would have
 *           written, §6), emit the accepted drafts and the next token, and keep the hidden state
 *           of the last accepted row as h for the next draft (§1 step 7).
 * Options: drafter (path; default: <model stem>-redrafter.gguf beside the model, then under
 * $SPECD_CACHE/models or ~/.cache/specd/models), W (beam width, 1..32; absent: auto up to 4), L
 * (beam length with the root, 2..k_trained+1; absent: auto up to min(6, k_trained+1)), nodes (at most this many tree rows, the drafter's likeliest; 0 = all
 * 1 + W(L-1); exact rule only), accept (exact|reference), prefill_chunk (256, 1..4096).
 * auto (redrafter_auto.h, ABI 1.2's cost model) picks each step's W and/or L, or a plain step, for
 * the most expected tokens per unit of time; an older host gets the fixed W = 4, L = 5.
 * Everything a step needs is allocated in create() and begin(). */
#include <inttypes.h>
#include <specd/decoder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redrafter_accept.h"
#include "redrafter_auto.h"
#include "redrafter_drafter.h"
#include "redrafter_tree.h"

typedef struct rd_instance {
  const specd_host_api *api;
  specd_host *host;
  const specd_model_info *model;
  int32_t W, L, chunk, reference, max_nodes; /* W, L: fixed, or auto's largest */
  int32_t w_auto, l_auto;
  rd_drafter drafter;
  int32_t *rows; /* 0, 1, ..., chunk-1 for prefill commits */
  rd_auto_hist *auto_hist; /* the host's decoder memory (ABI 1.3; NULL on older hosts or fixed W, L) */
} rd_instance;

typedef struct rd_seq {
  int32_t tree_step; /* this step verifies a tree (else a prefill chunk or a plain step) */
  int32_t have_h;
  rd_tree tree;
  float *h;          /* [dim] hidden state of the row that produced the pending token */
  int32_t *beams;    /* [W][L] */
  int32_t *q_ids;    /* [W][L-1][topk] */
  float *q_logq;
  float *score;      /* [W] */
  float *cum;        /* [W][L]: drafter log-probability of each beam prefix */
  float *node_score; /* [1 + W(L-1)] */
  int32_t *prune;    /* [1 + W(L-1)] scratch */
  float *probs;      /* [vocab], reference rule only */
  int32_t *path;     /* [L] */
  int32_t *out;      /* [L]: emitted run */
  int64_t steps, drafted_steps, accepted;
  int32_t auto_step; /* this step's W and L came from rd_auto_choose */
  rd_auto_seq autos;
} rd_seq;

static int read_int(const specd_host_api *api, specd_host *h, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int32_t *out) {
  int64_t v = 0;
  const int rc = api->opt_int(h, key, def, lo, hi, &v);
  *out = (int32_t)v;
  return rc;
}

static int readable(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f != NULL) fclose(f);
  return f != NULL;
}

/* The default drafter: "<stem>-redrafter.gguf" beside the model, else in the training cache. Sets
 * out to the first that is readable and returns 1; else returns 0 with tried naming both. */
static int find_drafter(const specd_model_info *model, char *out, size_t size, char *tried, size_t tried_size) {
  const char *path = model->path ? model->path : "";
  const char *base = strrchr(path, '/');
  const int dir_len = base ? (int)(base - path) : 0;
  base = base ? base + 1 : path;
  int stem_len = (int)strlen(base);
  if (stem_len > 5 && strcmp(base + stem_len - 5, ".gguf") == 0) stem_len -= 5;
  snprintf(out, size, "%.*s%s%.*s-redrafter.gguf", dir_len, path, dir_len ? "/" : "", stem_len, base);
  if (readable(out)) return 1;
  snprintf(tried, tried_size, "%s", out);
  const char *cache = getenv("SPECD_CACHE"), *home = getenv("HOME");
  if (cache != NULL && *cache)
    snprintf(out, size, "%s/models/%.*s-redrafter.gguf", cache, stem_len, base);
  else
    snprintf(out, size, "%s/.cache/specd/models/%.*s-redrafter.gguf", home ? home : "", stem_len, base);
  const size_t used = strlen(tried);
  snprintf(tried + used, tried_size - used, " or %s", out);
  return readable(out);
}

static void rd_destroy(void *instance) {
  rd_instance *g = instance;
  if (g == NULL) return;
  rd_drafter_close(&g->drafter);
  g->api->mem_free(g->host, g->rows);
  g->api->mem_free(g->host, g);
}

static int rd_create(const specd_host_api *api, specd_host *h, const specd_model_info *model, const char *options_json,
                     void **instance) {
  (void)options_json; /* read through api->opt_* */
  *instance = NULL;
  if (!SPECD_HAS(specd_host_api, api, refuse) || !SPECD_HAS(specd_model_info, model, max_rows)) return SPECD_E_VERSION;
  int32_t W = 0, L = 0, chunk = 0, nodes = 0;
  const char *path = NULL, *rule = NULL;
  int rc = read_int(api, h, "W", 0, 1, 32, &W); /* 0: absent, auto */
  if (rc == SPECD_OK) rc = read_int(api, h, "L", 0, 2, 65, &L);
  if (rc == SPECD_OK) rc = read_int(api, h, "prefill_chunk", 256, 1, 4096, &chunk);
  if (rc == SPECD_OK) rc = read_int(api, h, "nodes", 0, 0, 4096, &nodes);
  if (rc == SPECD_OK) rc = api->opt_string(h, "accept", "exact", &rule);
  if (rc == SPECD_OK) rc = api->opt_string(h, "drafter", NULL, &path);
  if (rc != SPECD_OK) return rc;
  const int32_t can_auto = SPECD_HAS(specd_host_api, api, seq_note_setting);
  const int32_t w_auto = W == 0 && can_auto, l_auto = L == 0 && can_auto;
  if (W == 0) W = 4;
  if (L == 0) L = l_auto ? 6 : 5; /* auto's cap is cut to the drafter's k_trained + 1 below */
  if (strcmp(rule, "exact") != 0 && strcmp(rule, "reference") != 0)
    return api->refuse(h, SPECD_E_BAD_OPTION, "option 'accept' must be exact or reference, not '%s'", rule);
  if (chunk > model->max_rows) chunk = model->max_rows;
  if (nodes > 0 && strcmp(rule, "exact") != 0)
    return api->refuse(h, SPECD_E_BAD_OPTION, "option 'nodes' prunes beams, which accept=reference needs whole");
  if (1 + W * (L - 1) > model->max_rows)
    return api->refuse(h, SPECD_E_BAD_OPTION, "W=%d, L=%d needs %d rows per step, the host allows %d", W, L,
                       1 + W * (L - 1), model->max_rows);
  char found[4096], tried[8300];
  if (path == NULL) {
    if (!find_drafter(model, found, sizeof found, tried, sizeof tried))
      return api->refuse(h, SPECD_E_IO,
                         "no drafter given (option drafter=PATH) and none at %s; make one for this model with "
                         "scripts/train.sh redrafter",
                         tried);
    path = found;
  }
  rd_instance *g = api->mem_alloc(h, sizeof *g);
  if (g == NULL) return SPECD_E_NOMEM;
  memset(g, 0, sizeof *g);
  g->api = api;
  g->host = h;
  g->model = model;
  g->W = W;
  g->L = L;
  g->chunk = chunk;
  g->reference = strcmp(rule, "reference") == 0;
  g->max_nodes = nodes;
  g->rows = api->mem_alloc(h, (size_t)chunk * sizeof(int32_t));
  if (g->rows == NULL) {
    rd_destroy(g);
    return SPECD_E_NOMEM;
  }
  for (int32_t i = 0; i < chunk; ++i) g->rows[i] = i;
  if ((rc = rd_drafter_open(&g->drafter, api, h, model, path, W, L)) != SPECD_OK) {
    rd_destroy(g);
    return rc;
  }
  if (l_auto && L - 1 > g->drafter.k_trained) L = g->L = g->drafter.k_trained + 1 >= 2 ? g->drafter.k_trained + 1 : 2;
  g->w_auto = w_auto;
  g->l_auto = l_auto;
  if ((w_auto || l_auto) && SPECD_HAS(specd_host_api, api, decoder_memory))
    g->auto_hist = api->decoder_memory(h, sizeof(rd_auto_hist));
  if (L - 1 > g->drafter.k_trained) {
    const int32_t k = g->drafter.k_trained;
    rd_destroy(g);
    return api->refuse(h, SPECD_E_BAD_OPTION, "L=%d drafts %d tokens, the drafter was trained for at most %d", L, L - 1, k);
  }
  *instance = g;
  return SPECD_OK;
}

static int rd_begin(void *instance, specd_seq *s) {
  const rd_instance *g = instance;
  const specd_host_api *api = g->api;
  const size_t W = (size_t)g->W, L = (size_t)g->L, K = (size_t)g->drafter.topk, dim = (size_t)g->model->dim;
  const size_t q = W * (L - 1) * K, nmax = 1 + W * (L - 1);
  const size_t floats = dim + q + W + (size_t)g->model->vocab + W * L + nmax;
  const size_t ints = W * L + q + 2 * L + rd_tree_ints(g->W, g->L) + nmax;
  rd_seq *st = api->mem_alloc(g->host, sizeof *st + floats * sizeof(float) + ints * sizeof(int32_t));
  if (st == NULL) return api->fail(s, SPECD_E_NOMEM, "out of memory for the sequence's draft buffers");
  memset(st, 0, sizeof *st);
  float *f = (float *)(st + 1);
  st->h = f, f += dim;
  st->q_logq = f, f += q;
  st->score = f, f += W;
  st->probs = f, f += g->model->vocab;
  st->cum = f, f += W * L;
  st->node_score = f, f += nmax;
  int32_t *i = (int32_t *)f;
  st->beams = i, i += W * L;
  st->q_ids = i, i += q;
  st->path = i, i += L;
  st->out = i, i += L;
  st->prune = i, i += nmax;
  rd_tree_init(&st->tree, g->W, g->L, i);
  rd_auto_init(&st->autos);
  rd_auto_seed(&st->autos, g->auto_hist);
  api->seq_set_user(s, st);
  return SPECD_OK;
}

static void rd_end(void *instance, specd_seq *s) {
  rd_instance *g = instance;
  rd_seq *st = g->api->seq_user(s);
  if (st == NULL) return;
  rd_auto_keep(g->auto_hist, &st->autos);
  g->api->log_msg(g->host, SPECD_LOG_DEBUG, "%" PRId64 " steps, %" PRId64 " with a tree, %" PRId64 " drafts accepted",
                  st->steps, st->drafted_steps, st->accepted);
  g->api->seq_set_user(s, NULL);
  g->api->mem_free(g->host, st);
}

static int32_t add_row(const specd_host_api *api, specd_seq *s, specd_batch *b, int32_t token, int32_t pos,
                       uint32_t flags) {
  const int32_t row = api->row_add(b, token, pos, flags);
  if (row < 0) api->fail(s, row, "row at position %d failed (%d)", pos, row);
  return row;
}

static int plan_prefill(const rd_instance *g, specd_seq *s, specd_batch *b, const int32_t *tok, int32_t n, int32_t kv) {
  const specd_host_api *api = g->api;
  const int32_t r = n - kv < g->chunk ? n - kv : g->chunk;
  for (int32_t i = 0; i < r; ++i) {
    const int32_t pos = kv + i;
    const int32_t row = add_row(api, s, b, tok[pos], pos, pos == n - 1 ? SPECD_ROW_LOGITS | SPECD_ROW_HIDDEN : 0u);
    if (row < 0) return row;
    const int rc = api->row_see_all_before(b, row);
    if (rc != SPECD_OK) return rc;
  }
  return SPECD_OK;
}

/* Rows of the tree: node p at kv + depth(p), seeing its ancestors. */
static int plan_tree(const rd_instance *g, specd_seq *s, specd_batch *b, const rd_tree *t, int32_t kv) {
  const specd_host_api *api = g->api;
  for (int32_t p = 0; p < t->n; ++p) {
    const int32_t row = add_row(api, s, b, t->tok[p], kv + t->depth[p], SPECD_ROW_LOGITS | SPECD_ROW_HIDDEN);
    if (row < 0) return row;
    for (int32_t a = t->parent[p]; a >= 0; a = t->parent[a]) {
      const int rc = api->row_see(b, row, a);
      if (rc != SPECD_OK) return rc;
    }
  }
  return SPECD_OK;
}

static int rd_plan(void *instance, specd_seq *s, specd_batch *b) {
  rd_instance *g = instance;
  const specd_host_api *api = g->api;
  rd_seq *st = api->seq_user(s);
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "plan before begin");
  st->tree_step = 0;
  if (n > g->model->ctx_len) {
    api->finish(s, SPECD_FINISH_CONTEXT);
    return SPECD_OK;
  }
  if (kv >= n) return api->fail(s, SPECD_E_INTERNAL, "no pending token (kv %d, tokens %d)", kv, n);
  if (n - kv > 1) return plan_prefill(g, s, b, tok, n, kv);
  /* One pending token: a tree of depth L' - 1 (every node emits at most one token). */
  int32_t L = g->L;
  const int32_t remaining = api->seq_remaining(s), room = g->model->ctx_len - kv;
  if (remaining < L) L = remaining;
  if (room < L) L = room;
  st->tree_step = 1;
  int32_t W = g->W;
  st->auto_step = (g->w_auto || g->l_auto) && L >= 2 && st->have_h;
  if (st->auto_step) rd_auto_choose(&st->autos, api, g->host, s, g->w_auto, g->l_auto, &W, &L);
  rd_tree_init(&st->tree, W, L >= 2 ? L : 1, st->tree.tree);
  if (L < 2 || !st->have_h) { /* a one-node tree: the root alone, a plain ar step */
    st->tree.n = 1;
    st->tree.tok[0] = tok[kv];
    st->tree.depth[0] = 0;
    st->tree.parent[0] = -1;
    for (int32_t w = 0; w < W; ++w) st->tree.unpacker[w * st->tree.L] = 0;
  } else {
    const int rc =
        rd_drafter_beams(&g->drafter, st->h, tok[kv], W, L, st->beams, st->q_ids, st->q_logq, st->score, st->cum);
    if (rc != SPECD_OK) return api->fail(s, rc, "drafter beam search failed (%d)", rc);
    rd_tree_pack(&st->tree, st->beams);
    if (g->max_nodes > 0 && st->tree.n > g->max_nodes) {
      for (int32_t p = 0; p < st->tree.n; ++p) st->node_score[p] = st->cum[st->tree.beam_pos[p]];
      rd_tree_prune(&st->tree, st->node_score, g->max_nodes, st->prune);
    }
    if (st->auto_step) rd_auto_note_tree(&st->autos, st->tree.n);
    st->drafted_steps++;
  }
  return plan_tree(g, s, b, &st->tree, kv);
}

static int rd_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  rd_instance *g = instance;
  const specd_host_api *api = g->api;
  rd_seq *st = api->seq_user(s);
  if (st == NULL) return api->fail(s, SPECD_E_INTERNAL, "accept before begin");
  const int32_t *tok = NULL;
  const int32_t n = api->seq_tokens(s, &tok);
  const int32_t kv = api->seq_kv_len(s);
  const int32_t dim = g->model->dim;
  st->steps++;
  if (!st->tree_step) { /* a prefill chunk; its last row, if the prompt's end, gives h and g0 */
    const int32_t r = n - kv < g->chunk ? n - kv : g->chunk;
    int rc = api->commit(s, o, g->rows, r);
    if (rc != SPECD_OK || kv + r < n) return rc;
    const float *l = api->out_logits(o, r - 1), *h = api->out_hidden(o, r - 1);
    if (l == NULL || h == NULL) return api->fail(s, SPECD_E_INTERNAL, "no logits/hidden state for the last prompt row");
    memcpy(st->h, h, (size_t)dim * sizeof(float));
    st->have_h = 1;
    st->out[0] = api->sample(s, l);
    if (st->out[0] < 0) return st->out[0];
    const int32_t taken = api->emit(s, st->out, 1);
    return taken < 0 ? taken : SPECD_OK;
  }
  rd_verdict v = {0, 0};
  const rd_tree *t = &st->tree;
  const int rc = g->reference && t->n > 1
                     ? rd_accept_reference(api, s, o, t, st->beams, st->q_ids, st->q_logq, g->drafter.topk,
                                           g->model->vocab, st->probs, st->path, &v)
                     : rd_accept_exact(api, s, o, t, st->path, &v);
  if (rc != SPECD_OK) return rc;
  const int crc = api->commit(s, o, st->path, v.n + 1);
  if (crc != SPECD_OK) return crc;
  const float *h = api->out_hidden(o, st->path[v.n]);
  if (h == NULL) return api->fail(s, SPECD_E_INTERNAL, "no hidden state for tree row %d", st->path[v.n]);
  memcpy(st->h, h, (size_t)dim * sizeof(float));
  st->have_h = 1;
  st->accepted += v.n;
  if (st->auto_step) rd_auto_record(&st->autos, v.n);
  for (int32_t k = 1; k <= v.n; ++k) st->out[k - 1] = t->tok[st->path[k]];
  st->out[v.n] = v.next;
  const int32_t taken = api->emit(s, st->out, v.n + 1);
  return taken < 0 ? taken : SPECD_OK;
}

/* What create() reads (ABI 1.2; tests/test_decoder_options.cpp checks it against the code). */
static const specd_option_desc rd_options[] = {
    {sizeof(specd_option_desc), SPECD_OPTION_STRING, "drafter", "<model>-redrafter.gguf beside the model or in $SPECD_CACHE/models",
     NULL, "the drafter's GGUF (a path in a side-file directory)"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "W", "0: auto, chosen each step", "[1, 32]",
     "beams drafted per step; left out: auto (1, 2 or 4, or plain steps when drafts do not pay)"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "L", "0: auto, chosen each step", "[2, 65]",
     "beam length (L - 1 draft tokens, at most the drafter's); left out: auto (up to 6)"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "nodes", "0", "[0, 4096]", "prune the beam tree to this many nodes; 0: keep all"},
    {sizeof(specd_option_desc), SPECD_OPTION_STRING, "accept", "exact", "exact|reference",
     "exact: lossless tree walk; reference: the Apple / TensorRT-LLM per-beam rule, biased when sampling (for parity)"},
    {sizeof(specd_option_desc), SPECD_OPTION_INT, "prefill_chunk", "256", "[1, 4096]", "prompt tokens per forward"},
};

static const specd_decoder rd_decoder = {
    SPECD_DECODER_HEAD,
    .name = "redrafter",
    .version = "1.1.0",
    .description = "Recurrent Drafter: RNN drafter, beam search, tree verification, lossless (options: drafter, W, L "
                   "(absent: auto), nodes, accept, prefill_chunk)",
    .create = rd_create,
    .destroy = rd_destroy,
    .begin = rd_begin,
    .plan = rd_plan,
    .accept = rd_accept,
    .end = rd_end,
    .options = rd_options,
    .n_options = sizeof rd_options / sizeof rd_options[0],
    .flags = SPECD_DECODER_LOSSLESS,
    .needs = "a drafter trained for the model: <model>-redrafter.gguf (make it with scripts/train.sh redrafter)",
};

SPECD_EXPORT const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  /* file_attach, meta_* and refuse arrived in 1.1. */
  return host_abi_major == SPECD_DECODER_ABI_MAJOR && host_abi_minor >= 1 ? &rd_decoder : NULL;
}
