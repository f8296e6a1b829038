/* LoPA's `auto` choice of the lookahead branch count (see lopa_auto.h). */
#include "lopa_auto.h"

#include <stdio.h>

#define LOPA_AUTO_EWMA 0.2
#define LOPA_AUTO_GAIN 0.25 /* the untried guess: k branches decode 1 + k/4 times what none do */

void lopa_auto_init(lopa_auto *a) {
  for (int32_t k = 0; k <= LOPA_MAX_LOOKAHEAD; ++k) {
    a->progress[k] = 0.0;
    a->seen[k] = 0;
  }
  spec_accept_init(&a->probe, SPEC_AUTO_PRIOR_P);
}

void lopa_auto_record(lopa_auto *a, int32_t k, int32_t decoded) {
  if (k < 0 || k > LOPA_MAX_LOOKAHEAD || decoded < 0) return;
  a->progress[k] = a->seen[k] ? a->progress[k] + LOPA_AUTO_EWMA * (decoded - a->progress[k]) : (double)decoded;
  a->seen[k]++;
}

static double expected_progress(const lopa_auto *a, int32_t k) {
  if (a->seen[k]) return a->progress[k];
  const double base = a->seen[0] && a->progress[0] > 0.0 ? a->progress[0] : 1.0;
  return base * (1.0 + LOPA_AUTO_GAIN * k);
}

int32_t lopa_auto_choose(lopa_auto *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t cap,
                         int32_t shared_rows, int32_t window_rows) {
  double tokens[LOPA_MAX_LOOKAHEAD + 1], cost[LOPA_MAX_LOOKAHEAD + 1];
  if (cap > LOPA_MAX_LOOKAHEAD) cap = LOPA_MAX_LOOKAHEAD;
  if (window_rows < 1) window_rows = 1;
  for (int32_t k = 0; k <= cap; ++k) {
    tokens[k] = expected_progress(a, k);
    cost[k] = api->step_cost(h, shared_rows + (k + 1) * window_rows);
  }
  const int32_t k = spec_auto_choose(&a->probe, tokens, cost, cap + 1);
  char label[16];
  snprintf(label, sizeof label, "k=%d", (int)k);
  api->seq_note_setting(s, label);
  return k;
}
