#include "redrafter_drafter.h"

#include "redrafter_beam.h"

#include <stdio.h>
#include <string.h>

static int meta_dim(rd_drafter *d, const char *key, int32_t lo, int32_t hi, int32_t *out) {
  int64_t v = 0;
  if (d->api->meta_int(d->host, key, &v) != SPECD_OK || v < lo || v > hi)
    return d->api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter metadata %s missing or outside [%d, %d]", key, lo, hi);
  *out = (int32_t)v;
  return SPECD_OK;
}

/* Look up tensor name and check it is an F32 [rows][cols] matrix (rows = 0: a vector of cols). */
static int want_tensor(rd_drafter *d, const char *name, int64_t rows, int64_t cols, specd_tensor *t) {
  t->struct_size = sizeof *t;
  if (d->api->tensor(d->host, name, t) != SPECD_OK)
    return d->api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter tensor %s is missing", name);
  const int ok = rows == 0 ? (t->n_dims == 1 && t->ne[0] == cols)
                           : (t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows);
  if (!ok || (t->type != 0 && rows == 0))
    return d->api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter tensor %s has shape [%lld x %lld], expected [%lld x %lld]",
                          name, (long long)(t->n_dims >= 2 ? t->ne[1] : 0), (long long)t->ne[0], (long long)rows,
                          (long long)cols);
  return SPECD_OK;
}

static int read_layout(rd_drafter *d, const specd_model_info *model) {
  const specd_host_api *api = d->api;
  int rc = meta_dim(d, "specd.redrafter.vocab", 1, 1 << 24, &d->vocab);
  if (rc == SPECD_OK) rc = meta_dim(d, "specd.redrafter.input_dim", 1, 1 << 16, &d->in_dim);
  if (rc == SPECD_OK) rc = meta_dim(d, "specd.redrafter.state_dim", 1, 1 << 16, &d->state_dim);
  if (rc == SPECD_OK) rc = meta_dim(d, "specd.redrafter.exit_dim", 1, 1 << 17, &d->exit_dim);
  if (rc == SPECD_OK) rc = meta_dim(d, "specd.redrafter.n_blocks", 0, RD_MAX_BLOCKS, &d->n_blocks);
  if (rc == SPECD_OK) rc = meta_dim(d, "specd.redrafter.k_trained", 1, 64, &d->k_trained);
  if (rc != SPECD_OK) return rc;
  const char *digest = NULL;
  if (api->meta_string(d->host, "specd.redrafter.target_digest", &digest) != SPECD_OK)
    return api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter has no specd.redrafter.target_digest");
  if (model->digest == NULL || strcmp(digest, model->digest) != 0)
    return api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter was trained for model %s, this model is %s (%s)", digest,
                       model->digest ? model->digest : "?", model->path ? model->path : "?");
  if (d->vocab != model->vocab || d->in_dim != model->dim)
    return api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter expects vocab %d and dim %d, the model has %d and %d",
                       d->vocab, d->in_dim, model->vocab, model->dim);
  return SPECD_OK;
}

static int find_tensors(rd_drafter *d) {
  const int32_t H = d->state_dim, E = d->exit_dim, IN = d->in_dim;
  int rc = want_tensor(d, "token_embd.weight", d->vocab, IN, &d->embd);
  if (rc == SPECD_OK) rc = want_tensor(d, "redrafter.rnn_w.weight", H, IN, &d->rnn_w);
  if (rc == SPECD_OK) rc = want_tensor(d, "redrafter.rnn_u.weight", H, H, &d->rnn_u);
  if (rc == SPECD_OK) rc = want_tensor(d, "redrafter.rnn_u.bias", 0, H, &d->rnn_b);
  if (rc == SPECD_OK) rc = want_tensor(d, "redrafter.head.weight", d->vocab, E, &d->head);
  if (rc != SPECD_OK) return rc;
  specd_tensor probe = {sizeof probe, 0, 0, {0, 0, 0, 0}, NULL};
  d->has_proj = d->api->tensor(d->host, "redrafter.input_proj.weight", &probe) == SPECD_OK;
  if (d->has_proj) {
    rc = want_tensor(d, "redrafter.input_proj.weight", E, IN + H, &d->proj_w);
    if (rc == SPECD_OK) rc = want_tensor(d, "redrafter.input_proj.bias", 0, E, &d->proj_b);
    if (rc != SPECD_OK) return rc;
  } else if (E != IN + H) {
    return d->api->refuse(d->host, SPECD_E_BAD_MODEL, "drafter exit_dim %d needs input_proj (input %d + state %d)", E, IN, H);
  }
  for (int32_t j = 0; j < d->n_blocks && rc == SPECD_OK; ++j) {
    char name[64];
    snprintf(name, sizeof name, "redrafter.block.%d.weight", (int)j);
    rc = want_tensor(d, name, E, E, &d->block_w[j]);
    snprintf(name, sizeof name, "redrafter.block.%d.bias", (int)j);
    if (rc == SPECD_OK) rc = want_tensor(d, name, 0, E, &d->block_b[j]);
  }
  return rc;
}

static int make_buffers(rd_drafter *d) {
  const specd_host_api *api = d->api;
  const size_t w = (size_t)d->wmax, zdim = (size_t)(d->in_dim + d->state_dim);
  const size_t sizes[8] = {w * (size_t)d->in_dim, w * (size_t)d->state_dim, w * (size_t)d->state_dim,
                           w * (size_t)d->state_dim, w * zdim, w * (size_t)d->exit_dim, w * (size_t)d->exit_dim,
                           w * (size_t)d->vocab};
  specd_buf **bufs[8] = {&d->emb, &d->x1, &d->x2, &d->state, &d->z, &d->a, &d->t, &d->logits};
  for (int i = 0; i < 8; ++i)
    if (api->buf_create(d->host, sizes[i], bufs[i]) != SPECD_OK) return SPECD_E_NOMEM;
  /* Host scratch in one block: states, per-beam integers, scores and the stored distributions. */
  const size_t q = w * (size_t)(d->lmax - 1) * (size_t)d->topk;
  const size_t floats = 2 * w * (size_t)d->state_dim + 2 * w + 2 * w * (size_t)d->topk + q + w * (size_t)d->lmax;
  const size_t ints = 4 * w + w * (size_t)d->topk + w * (size_t)d->lmax + q;
  char *mem = api->mem_alloc(d->host, floats * sizeof(float) + ints * sizeof(int32_t));
  if (mem == NULL) return SPECD_E_NOMEM;
  float *f = (float *)mem;
  d->host_state = f, f += w * (size_t)d->state_dim;
  d->host_state2 = f, f += w * (size_t)d->state_dim;
  d->score = f, f += w;
  d->score2 = f, f += w;
  d->top_vals = f, f += w * (size_t)d->topk;
  d->top_logq = f, f += w * (size_t)d->topk;
  d->q_logq2 = f, f += q;
  d->cum2 = f, f += w * (size_t)d->lmax;
  int32_t *i = (int32_t *)f;
  d->last = i, i += w;
  d->parent = i, i += w;
  d->token = i, i += w;
  d->rank = i, i += w;
  d->top_ids = i, i += w * (size_t)d->topk;
  d->beams2 = i, i += w * (size_t)d->lmax;
  d->q_ids2 = i;
  return SPECD_OK;
}

int rd_drafter_open(rd_drafter *d, const specd_host_api *api, specd_host *h, const specd_model_info *model,
                    const char *path, int32_t wmax, int32_t lmax) {
  memset(d, 0, sizeof *d);
  d->api = api;
  d->host = h;
  d->wmax = wmax;
  d->lmax = lmax;
  int rc = api->file_attach(h, path);
  if (rc == SPECD_E_ACCESS) /* name the option; the host's reason says the same without it */
    return api->refuse(h, rc, "option 'drafter': %s is not in a directory side files may come from (daemon.side_file_dirs)",
                       path);
  if (rc != SPECD_OK) return rc; /* the host recorded the reason */
  if ((rc = read_layout(d, model)) != SPECD_OK || (rc = find_tensors(d)) != SPECD_OK) return rc;
  d->topk = d->vocab < RD_TOPK ? d->vocab : RD_TOPK;
  if (wmax > d->topk)
    return api->refuse(h, SPECD_E_BAD_OPTION, "beam width %d exceeds the drafter's %d candidates", wmax, d->topk);
  if ((rc = make_buffers(d)) != SPECD_OK) {
    rd_drafter_close(d);
    return api->refuse(h, rc, "out of memory for the drafter's buffers");
  }
  return SPECD_OK;
}

void rd_drafter_close(rd_drafter *d) {
  if (d->api == NULL) return;
  specd_buf *bufs[8] = {d->emb, d->x1, d->x2, d->state, d->z, d->a, d->t, d->logits};
  for (int i = 0; i < 8; ++i)
    if (bufs[i] != NULL) d->api->buf_destroy(d->host, bufs[i]);
  d->api->mem_free(d->host, d->host_state); /* the start of the host scratch block */
  memset(d, 0, sizeof *d);
}

/* s ← SiLU(rnn_w·e(last) + rnn_u·s + b) for the m live beams, then a = the head's input. */
static int rnn_and_blocks(rd_drafter *d, int32_t m) {
  const specd_host_api *api = d->api;
  specd_host *h = d->host;
  const size_t H = (size_t)d->state_dim, E = (size_t)d->exit_dim, IN = (size_t)d->in_dim;
  int rc = api->op_embed(h, &d->embd, d->last, m, d->emb);
  if (rc == SPECD_OK) rc = api->op_gemm(h, &d->rnn_w, NULL, d->emb, m, d->x1);
  if (rc == SPECD_OK) rc = api->op_gemm(h, &d->rnn_u, &d->rnn_b, d->state, m, d->x2);
  if (rc == SPECD_OK) rc = api->op_add(h, d->x1, d->x2, d->state, (size_t)m * H);
  if (rc == SPECD_OK) rc = api->op_silu(h, d->state, (size_t)m * H);
  if (rc == SPECD_OK) rc = api->buf_read(h, d->state, 0, d->host_state, (size_t)m * H);
  /* z = [h ; s]: h was written into every row once per draft; the state part changes per step. */
  for (int32_t b = 0; b < m && rc == SPECD_OK; ++b)
    rc = api->buf_write(h, d->z, (size_t)b * (IN + H) + IN, d->host_state + (size_t)b * H, H);
  if (rc != SPECD_OK) return rc;
  /* a = z (or input_proj(z)); the residual blocks write into d->a so z keeps h for the next step. */
  const specd_buf *a = d->z;
  if (d->has_proj) {
    if ((rc = api->op_gemm(h, &d->proj_w, &d->proj_b, d->z, m, d->a)) != SPECD_OK) return rc;
    a = d->a;
  }
  for (int32_t j = 0; j < d->n_blocks && rc == SPECD_OK; ++j) {
    rc = api->op_gemm(h, &d->block_w[j], &d->block_b[j], a, m, d->t);
    if (rc == SPECD_OK) rc = api->op_silu(h, d->t, (size_t)m * E);
    if (rc == SPECD_OK) rc = api->op_add(h, a, d->t, d->a, (size_t)m * E);
    a = d->a;
  }
  if (rc == SPECD_OK) rc = api->op_gemm(h, &d->head, NULL, a, m, d->logits);
  if (rc == SPECD_OK) rc = api->op_topk(h, d->logits, m, d->vocab, d->topk, d->top_ids, d->top_vals);
  return rc;
}

int rd_drafter_beams(rd_drafter *d, const float *hid, int32_t g0, int32_t W, int32_t L, int32_t *beams, int32_t *q_ids,
                     float *q_logq, float *score, float *cum) {
  const specd_host_api *api = d->api;
  const size_t H = (size_t)d->state_dim, IN = (size_t)d->in_dim, K = (size_t)d->topk, C = (size_t)(L - 1);
  int rc = SPECD_OK;
  for (int32_t b = 0; b < W && rc == SPECD_OK; ++b) rc = api->buf_write(d->host, d->z, (size_t)b * (IN + H), hid, IN);
  memset(d->host_state, 0, (size_t)W * H * sizeof(float));
  if (rc == SPECD_OK) rc = api->buf_write(d->host, d->state, 0, d->host_state, (size_t)W * H);
  if (rc != SPECD_OK) return rc;
  /* Step 1 expands the root alone (every beam would be identical: the reference's -50000 score
   * trick), so the first W candidates are W different tokens. */
  int32_t alive = 1;
  d->last[0] = g0;
  score[0] = 0.0f;
  for (int32_t b = 0; b < W; ++b) {
    beams[(size_t)b * L] = g0;
    cum[(size_t)b * L] = 0.0f;
  }
  for (size_t t = 1; t <= C; ++t) {
    if ((rc = rnn_and_blocks(d, alive)) != SPECD_OK) return rc;
    for (int32_t b = 0; b < alive; ++b) rd_truncated_logq(d->top_vals + b * K, (int32_t)K, d->top_logq + b * K);
    const int32_t next = rd_beam_select(alive, (int32_t)K, W, score, d->top_ids, d->top_logq, d->parent, d->token,
                                        d->rank, d->score2);
    if (next != W) return SPECD_E_INTERNAL; /* W <= K, so the root alone offers enough */
    /* Re-gather by parent: prefix, stored distributions, state; then append this step. */
    for (int32_t w = 0; w < W; ++w) {
      const int32_t p = d->parent[w];
      memcpy(d->beams2 + (size_t)w * L, beams + (size_t)p * L, t * sizeof(int32_t));
      d->beams2[(size_t)w * L + t] = d->token[w];
      memcpy(d->q_ids2 + (size_t)w * C * K, q_ids + (size_t)p * C * K, (t - 1) * K * sizeof(int32_t));
      memcpy(d->q_logq2 + (size_t)w * C * K, q_logq + (size_t)p * C * K, (t - 1) * K * sizeof(float));
      memcpy(d->q_ids2 + ((size_t)w * C + t - 1) * K, d->top_ids + (size_t)p * K, K * sizeof(int32_t));
      memcpy(d->q_logq2 + ((size_t)w * C + t - 1) * K, d->top_logq + (size_t)p * K, K * sizeof(float));
      memcpy(d->host_state2 + (size_t)w * H, d->host_state + (size_t)p * H, H * sizeof(float));
      memcpy(d->cum2 + (size_t)w * L, cum + (size_t)p * L, t * sizeof(float));
      d->cum2[(size_t)w * L + t] = d->score2[w];
      d->last[w] = d->token[w];
      score[w] = d->score2[w];
    }
    for (int32_t w = 0; w < W; ++w) {
      memcpy(beams + (size_t)w * L, d->beams2 + (size_t)w * L, (t + 1) * sizeof(int32_t));
      memcpy(cum + (size_t)w * L, d->cum2 + (size_t)w * L, (t + 1) * sizeof(float));
    }
    memcpy(q_ids, d->q_ids2, (size_t)W * C * K * sizeof(int32_t));
    memcpy(q_logq, d->q_logq2, (size_t)W * C * K * sizeof(float));
    alive = W;
    if (t < C && (rc = api->buf_write(d->host, d->state, 0, d->host_state2, (size_t)W * H)) != SPECD_OK) return rc;
  }
  return SPECD_OK;
}
