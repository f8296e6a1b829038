#include "redrafter_accept.h"

#include <math.h>

static const float *logits_of(const specd_host_api *api, specd_seq *s, const specd_outputs *o, int32_t node) {
  const float *l = api->out_logits(o, node);
  if (l == NULL) api->fail(s, SPECD_E_INTERNAL, "no logits for tree row %d", node);
  return l;
}

int rd_accept_exact(const specd_host_api *api, specd_seq *s, const specd_outputs *o, const rd_tree *t, int32_t *path,
                    rd_verdict *v) {
  int32_t u = 0, n = 0;
  path[0] = 0;
  for (;;) {
    const float *l = logits_of(api, s, o, u);
    if (l == NULL) return SPECD_E_INTERNAL;
    const int32_t y = api->sample(s, l);
    if (y < 0) return y;
    const int32_t c = rd_tree_child(t, u, y);
    if (c < 0) {
      v->n = n;
      v->next = y;
      return SPECD_OK;
    }
    path[++n] = u = c;
  }
}

/* Q(x) of a truncated drafter distribution: 0 outside the kept candidates. */
static double q_of(const int32_t *ids, const float *logq, int32_t topk, int32_t x) {
  for (int32_t r = 0; r < topk; ++r)
    if (ids[r] == x) return exp((double)logq[r]);
  return 0.0;
}

int rd_accept_reference(const specd_host_api *api, specd_seq *s, const specd_outputs *o, const rd_tree *t,
                        const int32_t *beams, const int32_t *q_ids, const float *q_logq, int32_t topk, int32_t vocab,
                        float *probs, int32_t *path, rd_verdict *v) {
  const int32_t W = t->W, L = t->L, C = L - 1;
  int32_t best = 0, best_n = -1;
  for (int32_t i = 0; i < W; ++i) {
    int32_t k = 0;
    for (; k < C; ++k) {
      const int32_t node = t->unpacker[i * L + k], x = beams[i * L + k + 1];
      const float *l = logits_of(api, s, o, node);
      if (l == NULL) return SPECD_E_INTERNAL;
      api->probs(s, l, probs);
      const size_t qk = ((size_t)i * C + k) * (size_t)topk;
      const double q = q_of(q_ids + qk, q_logq + qk, topk, x);
      if (!(api->uniform(s) * q < (double)probs[x])) break; /* u < p/q without dividing by q = 0 */
    }
    if (k > best_n) {
      best_n = k;
      best = i;
    }
  }
  for (int32_t k = 0; k <= best_n; ++k) path[k] = t->unpacker[best * L + k];
  const float *l = logits_of(api, s, o, path[best_n]);
  if (l == NULL) return SPECD_E_INTERNAL;
  v->n = best_n;
  if (best_n == C) { /* every draft accepted: the bonus token */
    v->next = api->sample(s, l);
    return v->next < 0 ? v->next : SPECD_OK;
  }
  /* The residual max(0, P - Q) at the first rejected position of the chosen beam. */
  api->probs(s, l, probs);
  const size_t qk = ((size_t)best * C + best_n) * (size_t)topk;
  for (int32_t r = 0; r < topk; ++r) {
    const int32_t x = q_ids[qk + r];
    const float p = probs[x] - (float)exp((double)q_logq[qk + r]);
    probs[x] = p > 0.0f ? p : 0.0f;
  }
  double total = 0.0;
  for (int32_t x = 0; x < vocab; ++x) total += probs[x];
  if (!(total > 0.0)) { /* Q covered P entirely (e.g. greedy with q(argmax) = 1): take P's argmax */
    v->next = api->argmax(l, vocab);
    return SPECD_OK;
  }
  double u = api->uniform(s) * total;
  v->next = vocab - 1;
  for (int32_t x = 0; x < vocab; ++x) {
    u -= probs[x];
    if (u < 0.0 && probs[x] > 0.0f) {
      v->next = x;
      break;
    }
  }
  return SPECD_OK;
}
