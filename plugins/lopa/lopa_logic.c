/* LoPA / D2F bookkeeping (see lopa_logic.h): pure functions over block tables and score arrays. */
#include "lopa_logic.h"

#include <math.h>
#include <string.h>

void lopa_path_reset(lopa_path *p) {
  p->n_blocks = 0;
  p->eos = 0;
  p->look_pos = -1;
  p->creation_conf = 1.0f;
}

static int32_t gen_end(const lopa_path *p, const lopa_config *c) {
  return p->n_blocks > 0 ? p->blocks[p->n_blocks - 1].start + p->blocks[p->n_blocks - 1].len : c->prompt_len;
}

void lopa_path_copy(lopa_path *dst, const lopa_path *src, const lopa_config *c) {
  if (dst == src) return;
  dst->n_blocks = src->n_blocks;
  dst->eos = src->eos;
  dst->look_pos = src->look_pos;
  dst->creation_conf = src->creation_conf;
  memcpy(dst->blocks, src->blocks, (size_t)src->n_blocks * sizeof(lopa_block));
  memcpy(dst->tok, src->tok, (size_t)(gen_end(src, c) - c->prompt_len) * sizeof(int32_t));
}

float lopa_block_ratio(const lopa_block *b) { return (float)(b->len - b->masks_left) / (float)b->len; }

int32_t lopa_seg_end(const lopa_path *p, const lopa_config *c) {
  int32_t end = c->prompt_len;
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (p->blocks[j].state != LOPA_ACTIVE) end = p->blocks[j].start + p->blocks[j].len;
  return end;
}

int32_t lopa_window_rows(const lopa_path *p, const lopa_config *c, int32_t kv) {
  int32_t rows = lopa_seg_end(p, c) - kv;
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (p->blocks[j].state == LOPA_ACTIVE) rows += p->blocks[j].len;
  return rows;
}

static int has_active(const lopa_path *p) {
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (p->blocks[j].state == LOPA_ACTIVE) return 1;
  return 0;
}

int lopa_prepare(lopa_path *p, const lopa_config *c, int32_t kv) {
  /* Step 1: at most one new semi-activated block. */
  const float last_ratio = p->n_blocks > 0 ? lopa_block_ratio(&p->blocks[p->n_blocks - 1]) : 1.0f;
  const int32_t start = gen_end(p, c);
  const int32_t room = c->prompt_len + c->gen_cap - start;
  if (!c->hold && p->n_blocks < c->max_blocks && !p->eos && room > 0 && last_ratio >= c->tau_add) {
    const int32_t len = room < c->bs ? room : c->bs;
    if (lopa_window_rows(p, c, kv) + len <= c->max_rows) {
      lopa_block *b = &p->blocks[p->n_blocks++];
      b->start = start;
      b->len = len;
      b->masks_left = len;
      b->state = LOPA_ACTIVE;
      b->fully_active = 0;
      for (int32_t i = 0; i < len; ++i) p->tok[start - c->prompt_len + i] = c->mask_id;
    }
  }
  /* Step 2: full activation is sticky; the prompt (ratio 1) activates block 0. */
  for (int32_t j = 0; j < p->n_blocks; ++j) {
    const float prev = j == 0 ? 1.0f : lopa_block_ratio(&p->blocks[j - 1]);
    if (prev >= c->tau_act) p->blocks[j].fully_active = 1;
  }
  /* The first active block follows finished blocks, so it always may force progress (§2.3). */
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (p->blocks[j].state == LOPA_ACTIVE) {
      p->blocks[j].fully_active = 1;
      break;
    }
  return has_active(p);
}

int lopa_append_plain(lopa_path *p, const lopa_config *c, int32_t t) {
  const int32_t end = gen_end(p, c);
  if (has_active(p) || end >= c->prompt_len + c->gen_cap) return -1;
  if (p->n_blocks == 0) {
    lopa_block *b = &p->blocks[p->n_blocks++];
    b->start = end;
    b->len = 0;
    b->masks_left = 0;
    b->fully_active = 1;
  }
  /* Merged, not a block per token: the blocks a path can hold are sized for blocks of bs. */
  lopa_block *last = &p->blocks[p->n_blocks - 1];
  last->len++;
  last->state = LOPA_TO_CACHE;
  p->tok[end - c->prompt_len] = t;
  if (t == c->eos_id) p->eos = 1;
  return 0;
}

int32_t lopa_retire(lopa_path *p) {
  int32_t n = 0;
  for (int32_t j = 0; j < p->n_blocks; ++j) {
    lopa_block *b = &p->blocks[j];
    if (b->state != LOPA_ACTIVE) continue;
    if (b->masks_left != 0) break;
    b->state = LOPA_TO_CACHE;
    ++n;
  }
  return n;
}

void lopa_mark_cached(lopa_path *p) {
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (p->blocks[j].state == LOPA_TO_CACHE) p->blocks[j].state = LOPA_IN_CACHE;
}

int lopa_done(const lopa_path *p, const lopa_config *c) {
  if (has_active(p)) return 0;
  return p->eos || p->n_blocks >= c->max_blocks || gen_end(p, c) >= c->prompt_len + c->gen_cap;
}

int32_t lopa_masked(const lopa_path *p) {
  int32_t n = 0;
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (p->blocks[j].state == LOPA_ACTIVE) n += p->blocks[j].masks_left;
  return n;
}

void lopa_probs(const float *logits, int32_t vocab, int32_t mask_id, float *p) {
  float mx = -INFINITY;
  for (int32_t v = 0; v < vocab; ++v)
    if (v != mask_id && logits[v] > mx) mx = logits[v];
  double sum = 0.0;
  for (int32_t v = 0; v < vocab; ++v) {
    const float e = v == mask_id ? 0.0f : expf(logits[v] - mx);
    p[v] = e;
    sum += e;
  }
  const float inv = (float)(1.0 / sum);
  for (int32_t v = 0; v < vocab; ++v) p[v] *= inv;
}

int32_t lopa_argmax(const float *p, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (p[i] > p[best]) best = i;
  return best;
}

float lopa_conf(const float *p, int32_t vocab, int32_t token, int32_t strategy) {
  if (strategy == LOPA_CONF_MARGIN) {
    float t1 = -1.0f, t2 = -1.0f;
    for (int32_t v = 0; v < vocab; ++v) {
      if (p[v] > t1) {
        t2 = t1;
        t1 = p[v];
      } else if (p[v] > t2) {
        t2 = p[v];
      }
    }
    return t1 - (t2 < 0.0f ? 0.0f : t2);
  }
  if (strategy == LOPA_CONF_NEG_ENTROPY) {
    double s = 0.0;
    for (int32_t v = 0; v < vocab; ++v) s += (double)p[v] * log((double)p[v] + 1e-10);
    return (float)s;
  }
  return p[token];
}

int32_t lopa_fill(lopa_path *p, const lopa_config *c, const int32_t *tok_at, const float *prob_at,
                  const float *conf_at) {
  int32_t fills = 0;
  for (int32_t j = 0; j < p->n_blocks; ++j) {
    lopa_block *b = &p->blocks[j];
    if (b->state != LOPA_ACTIVE || b->masks_left == 0) continue;
    int32_t filled = 0, best = -1;
    /* All fills of a step read the same logits, so deciding and writing in one pass is safe. */
    for (int32_t q = b->start; q < b->start + b->len; ++q) {
      const int32_t i = q - c->prompt_len;
      if (p->tok[i] != c->mask_id) continue;
      if (best < 0 || conf_at[i] > conf_at[best]) best = i;
      if (prob_at[i] > c->tau_conf) {
        p->tok[i] = tok_at[i];
        if (tok_at[i] == c->eos_id) p->eos = 1;
        ++filled;
      }
    }
    if (filled == 0 && b->fully_active && best >= 0) {
      p->tok[best] = tok_at[best];
      if (tok_at[best] == c->eos_id) p->eos = 1;
      filled = 1;
    }
    b->masks_left -= filled;
    fills += filled;
  }
  return fills;
}

float lopa_branch_score(const lopa_path *p, const lopa_config *c, const float *conf_at) {
  double sum = 0.0;
  int32_t n = 0;
  for (int32_t j = 0; j < p->n_blocks; ++j) {
    const lopa_block *b = &p->blocks[j];
    if (b->state != LOPA_ACTIVE) continue;
    for (int32_t q = b->start; q < b->start + b->len; ++q)
      if (p->tok[q - c->prompt_len] == c->mask_id) {
        sum += conf_at[q - c->prompt_len];
        ++n;
      }
  }
  const double mean = n == 0 ? 1.0 : sum / n;
  return (float)(c->alpha * p->creation_conf + (1.0 - c->alpha) * mean);
}

int32_t lopa_pick_winner(const float *scores, int32_t n, int force_anchor) {
  if (force_anchor || n <= 1) return n - 1;
  int32_t w = 0;
  for (int32_t b = 1; b < n; ++b)
    if (scores[b] > scores[w]) w = b;
  return w;
}

int32_t lopa_top_positions(const lopa_path *w, const lopa_config *c, const float *conf_at, int32_t k, int32_t *pos) {
  int32_t m = 0;
  while (m < k) {
    int32_t best = -1;
    for (int32_t j = 0; j < w->n_blocks; ++j) {
      const lopa_block *b = &w->blocks[j];
      if (b->state != LOPA_ACTIVE) continue;
      for (int32_t q = b->start; q < b->start + b->len; ++q) {
        const int32_t i = q - c->prompt_len;
        if (w->tok[i] != c->mask_id) continue;
        int taken = 0;
        for (int32_t t = 0; t < m && !taken; ++t) taken = pos[t] == q;
        if (taken) continue;
        if (best < 0 || conf_at[i] > conf_at[best - c->prompt_len]) best = q;
      }
    }
    if (best < 0) break;
    pos[m++] = best;
  }
  return m;
}

void lopa_spawn(const lopa_path *w, const lopa_config *c, const int32_t *pos, int32_t m, const int32_t *tok_at,
                const float *conf_at, lopa_path *const *out) {
  for (int32_t j = 0; j < m; ++j) {
    lopa_path *b = out[j];
    lopa_path_copy(b, w, c);
    const int32_t i = pos[j] - c->prompt_len;
    b->tok[i] = tok_at[i];
    b->look_pos = pos[j];
    b->creation_conf = conf_at[i];
    if (tok_at[i] == c->eos_id) b->eos = 1;
    for (int32_t k = 0; k < b->n_blocks; ++k)
      if (pos[j] >= b->blocks[k].start && pos[j] < b->blocks[k].start + b->blocks[k].len) b->blocks[k].masks_left--;
  }
}

static int32_t block_of(const lopa_path *p, int32_t pos) {
  for (int32_t j = 0; j < p->n_blocks; ++j)
    if (pos >= p->blocks[j].start && pos < p->blocks[j].start + p->blocks[j].len) return j;
  return -1;
}

static int masked_active(const lopa_path *p, const lopa_config *c, int32_t pos) {
  const int32_t j = pos >= c->prompt_len ? block_of(p, pos) : -1;
  return j >= 0 && p->blocks[j].state == LOPA_ACTIVE && p->tok[pos - c->prompt_len] == c->mask_id;
}

static int32_t put_row(lopa_layout *L, const lopa_path *p, const lopa_config *c, const int32_t *prompt, int32_t cand,
                       int32_t pos) {
  if (L->n_rows >= c->max_rows) return -1;
  lopa_row *r = &L->rows[L->n_rows++];
  r->pos = pos;
  r->cand = cand;
  r->block = pos >= c->prompt_len ? block_of(p, pos) : -1;
  r->token = pos >= c->prompt_len ? p->tok[pos - c->prompt_len] : prompt[pos];
  r->logits = pos == L->seg_end - 1 || masked_active(p, c, pos + c->shift);
  return 0;
}

int32_t lopa_layout_build(lopa_layout *L, lopa_path *const *cands, int32_t n, const lopa_config *c, int32_t kv,
                          const int32_t *prompt) {
  const lopa_path *anchor = cands[n - 1];
  L->n_rows = 0;
  L->kv = kv;
  L->seg_end = lopa_seg_end(anchor, c);
  L->n_cand = n;
  L->shared = !c->full_window;
  L->shared_base = 0;
  if (L->shared)
    for (int32_t q = kv; q < L->seg_end; ++q)
      if (put_row(L, anchor, c, prompt, -1, q) < 0) return -1;
  for (int32_t b = 0; b < n; ++b) {
    const lopa_path *p = cands[b];
    L->cand_base[b] = L->n_rows;
    if (!L->shared)
      for (int32_t q = kv; q < L->seg_end; ++q)
        if (put_row(L, p, c, prompt, b, q) < 0) return -1;
    for (int32_t j = 0; j < p->n_blocks; ++j) {
      if (p->blocks[j].state != LOPA_ACTIVE) continue;
      for (int32_t q = p->blocks[j].start; q < p->blocks[j].start + p->blocks[j].len; ++q)
        if (put_row(L, p, c, prompt, b, q) < 0) return -1;
    }
    L->cand_rows[b] = L->n_rows - L->cand_base[b];
  }
  return L->n_rows;
}

int32_t lopa_layout_row(const lopa_layout *L, int32_t cand, int32_t pos) {
  if (pos < L->kv) return -1;
  if (L->shared && pos < L->seg_end) return L->shared_base + (pos - L->kv);
  const int32_t base = L->cand_base[cand], end = base + L->cand_rows[cand];
  /* A candidate's rows hold consecutive positions (segment, then its active blocks, which are contiguous). */
  if (end == base) return -1;
  const int32_t first = L->rows[base].pos;
  const int32_t r = base + (pos - first);
  return r >= base && r < end && L->rows[r].pos == pos ? r : -1;
}

int lopa_layout_sees(const lopa_layout *L, const lopa_config *c, int32_t i, int32_t j) {
  const lopa_row *a = &L->rows[i], *b = &L->rows[j];
  if (b->cand != -1 && b->cand != a->cand) return 0; /* isolation: own candidate or shared rows only */
  if (a->block < 0) return b->block < 0 && b->pos <= a->pos; /* prompt rows: causal over the prompt */
  if (c->full_window) return 1;
  return b->block <= a->block;
}
