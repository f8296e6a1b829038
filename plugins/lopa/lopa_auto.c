/* LoPA's `auto` choice of plain steps or the lookahead branch count (see lopa_auto.h). */
#include "lopa_auto.h"

#include <stdio.h>

void lopa_auto_init(lopa_auto *a) {
  for (int32_t k = 0; k <= LOPA_MAX_LOOKAHEAD; ++k) a->sum[k] = a->rounds[k] = 0.0;
  a->shared_rows = a->window_rows = 0;
  spec_accept_init(&a->probe, SPEC_AUTO_PRIOR_P);
  spec_accept_init(&a->plain_probe, SPEC_AUTO_PRIOR_P);
}

void lopa_auto_record(lopa_auto *a, int32_t k, int32_t decoded) {
  if (k < 0 || k > LOPA_MAX_LOOKAHEAD || decoded < 0) return;
  for (int32_t j = 0; j <= LOPA_MAX_LOOKAHEAD; ++j) a->sum[j] *= LOPA_AUTO_DECAY, a->rounds[j] *= LOPA_AUTO_DECAY;
  a->sum[k] += decoded;
  a->rounds[k] += 1.0;
}

void lopa_auto_note_layout(lopa_auto *a, int32_t shared_rows, int32_t window_rows) {
  a->shared_rows = shared_rows > 0 ? shared_rows : 0;
  a->window_rows = window_rows > 0 ? window_rows : 0;
}

static double posterior(const lopa_auto *a, int32_t k, double prior) {
  return (a->sum[k] + LOPA_AUTO_PRIOR_N * prior) / (a->rounds[k] + LOPA_AUTO_PRIOR_N);
}

double lopa_auto_expected(const lopa_auto *a, int32_t k) {
  if (k < 0 || k > LOPA_MAX_LOOKAHEAD) return 0.0;
  const double base = posterior(a, 0, LOPA_AUTO_PRIOR_D2F);
  double e = base;
  for (int32_t j = 1; j <= k; ++j) {
    const double own = posterior(a, j, base * (1.0 + LOPA_AUTO_GAIN * j));
    if (own > e) e = own;
  }
  return e;
}

int32_t lopa_auto_pick(lopa_auto *a, const double *cost, int32_t cap, int plain, int32_t bs) {
  double tokens[LOPA_MAX_LOOKAHEAD + 1];
  if (cap > LOPA_MAX_LOOKAHEAD) cap = LOPA_MAX_LOOKAHEAD;
  if (cap < 0) cap = 0;
  for (int32_t k = 0; k <= cap; ++k) tokens[k] = lopa_auto_expected(a, k);
  /* The branch count first, D2F (k = 0) its plain candidate, so more branches are probed while D2F
   * wins; then that round against a plain step, with its own probe. */
  const int32_t k = spec_auto_choose(&a->probe, tokens, cost + 1, cap + 1);
  if (!plain) return k;
  const double vs_tokens[2] = {1.0, tokens[k]}, vs_cost[2] = {cost[0], cost[1 + k]};
  const int32_t i = spec_auto_choose_probing(&a->plain_probe, vs_tokens, vs_cost, 2, bs > 1 ? (double)bs : 1.0);
  return i == 0 ? LOPA_AUTO_PLAIN : k;
}

int32_t lopa_auto_choose(lopa_auto *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t cap,
                         int plain, int32_t bs) {
  double cost[LOPA_MAX_LOOKAHEAD + 2];
  if (cap > LOPA_MAX_LOOKAHEAD) cap = LOPA_MAX_LOOKAHEAD;
  if (cap < 0) cap = 0;
  const int32_t window = a->window_rows > 0 ? a->window_rows : 2 * bs + 1;
  cost[0] = api->step_cost(h, 1);
  for (int32_t k = 0; k <= cap; ++k) cost[k + 1] = api->step_cost(h, a->shared_rows + (k + 1) * window);
  const int32_t k = lopa_auto_pick(a, cost, cap, plain, bs);
  char label[16];
  if (k == LOPA_AUTO_PLAIN)
    snprintf(label, sizeof label, "plain");
  else
    snprintf(label, sizeof label, "k=%d", (int)k);
  api->seq_note_setting(s, label);
  return k;
}

void lopa_auto_seed(lopa_auto *a, const lopa_auto_hist *h) {
  if (h == NULL || h->version != LOPA_AUTO_HIST_VERSION || h->size != sizeof *h) return;
  for (int32_t k = 0; k <= LOPA_MAX_LOOKAHEAD; ++k) {
    const double r = h->autos.rounds[k];
    const double scale = r > LOPA_AUTO_SEED_ROUNDS ? LOPA_AUTO_SEED_ROUNDS / r : 1.0;
    a->sum[k] = h->autos.sum[k] * scale;
    a->rounds[k] = r * scale;
  }
  a->shared_rows = h->autos.shared_rows;
  a->window_rows = h->autos.window_rows;
}

void lopa_auto_keep(lopa_auto_hist *h, const lopa_auto *a) {
  if (h == NULL) return;
  h->version = LOPA_AUTO_HIST_VERSION;
  h->size = sizeof *h;
  h->autos = *a;
}
