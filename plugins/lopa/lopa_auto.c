/* LoPA's `auto` choice of the lookahead branch count (see lopa_auto.h). */
#include "lopa_auto.h"

#include <stdio.h>

void lopa_auto_init(lopa_auto *a) {
  for (int32_t k = 0; k <= LOPA_MAX_LOOKAHEAD; ++k) a->sum[k] = a->rounds[k] = 0.0;
  spec_accept_init(&a->probe, SPEC_AUTO_PRIOR_P);
}

void lopa_auto_record(lopa_auto *a, int32_t k, int32_t decoded) {
  if (k < 0 || k > LOPA_MAX_LOOKAHEAD || decoded < 0) return;
  for (int32_t j = 0; j <= LOPA_MAX_LOOKAHEAD; ++j) a->sum[j] *= LOPA_AUTO_DECAY, a->rounds[j] *= LOPA_AUTO_DECAY;
  a->sum[k] += decoded;
  a->rounds[k] += 1.0;
}

static double posterior(const lopa_auto *a, int32_t k, double prior) {
  return (a->sum[k] + LOPA_AUTO_PRIOR_N * prior) / (a->rounds[k] + LOPA_AUTO_PRIOR_N);
}

double lopa_auto_expected(const lopa_auto *a, int32_t k) {
  if (k < 0 || k > LOPA_MAX_LOOKAHEAD) return 0.0;
  const double base = posterior(a, 0, 1.0);
  double e = base;
  for (int32_t j = 1; j <= k; ++j) {
    const double own = posterior(a, j, base * (1.0 + LOPA_AUTO_GAIN * j));
    if (own > e) e = own;
  }
  return e;
}

int32_t lopa_auto_choose(lopa_auto *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t cap,
                         int32_t shared_rows, int32_t window_rows) {
  double tokens[LOPA_MAX_LOOKAHEAD + 1], cost[LOPA_MAX_LOOKAHEAD + 1];
  if (cap > LOPA_MAX_LOOKAHEAD) cap = LOPA_MAX_LOOKAHEAD;
  if (window_rows < 1) window_rows = 1;
  for (int32_t k = 0; k <= cap; ++k) {
    tokens[k] = lopa_auto_expected(a, k);
    cost[k] = api->step_cost(h, shared_rows + (k + 1) * window_rows);
  }
  const int32_t k = spec_auto_choose(&a->probe, tokens, cost, cap + 1);
  char label[16];
  snprintf(label, sizeof label, "k=%d", (int)k);
  api->seq_note_setting(s, label);
  return k;
}
