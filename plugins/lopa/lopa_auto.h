/* LoPA's `auto` (option auto=1): how many lookahead branches the next round spawns
 * (plugins/common/spec_auto.h's choice). LoPA is lossy, so auto changes what is generated, not only
 * how fast; it is therefore opt-in and the default stays D2F (k = 0).
 *
 * Progress of a round is the positions it decoded: the winner's anchor fill, plus the one position
 * a winning lookahead brought. Per branch count it is a decayed mean (it follows the text) read with
 * a prior worth LOPA_AUTO_PRIOR_N rounds: one position for k = 0, and for k > 0 1 + k/4 times
 * k = 0's estimate (lookahead pays off in the LoPA paper's measurements), so branches get tried and
 * then judged on what they do. k branches are expected to decode at least what k - 1 do (the
 * anchor and the fewer branches are still among the candidates). A round's progress is a small,
 * noisy count: when the first round of a count was taken as its mean, a count that once decoded one
 * position stayed at one and lost to plain D2F for good (on the 1B D2F model auto ran slower than
 * both k = 0 and k = 1). The cost of k branches is the host's step_cost for the shared segment plus
 * k + 1 copies of the anchor's window, taken from the last round's layout. */
#ifndef SPECD_LOPA_AUTO_H
#define SPECD_LOPA_AUTO_H

#include <specd/decoder.h>

#include "../common/spec_auto.h"
#include "lopa_logic.h"

#define LOPA_AUTO_PRIOR_N 3.0 /* rounds the prior is worth */
#define LOPA_AUTO_DECAY 0.98  /* per recorded round: the means follow the last ~50 rounds */
#define LOPA_AUTO_GAIN 0.25   /* the prior: k branches decode 1 + k/4 times what none do */

typedef struct lopa_auto {
  double sum[LOPA_MAX_LOOKAHEAD + 1];    /* decayed positions decoded, by branch count */
  double rounds[LOPA_MAX_LOOKAHEAD + 1]; /* decayed rounds behind each sum */
  spec_accept probe;                     /* only its plain-run counter is used (the probe) */
} lopa_auto;

void lopa_auto_init(lopa_auto *a);
/* A round with k lookahead branches decoded `decoded` positions (other k or decoded < 0: ignored). */
void lopa_auto_record(lopa_auto *a, int32_t k, int32_t decoded);
/* The positions a round with k branches is expected to decode (0 <= k <= LOPA_MAX_LOOKAHEAD). */
double lopa_auto_expected(const lopa_auto *a, int32_t k);
/* The branch count for the next round, at most cap, from the last round's layout (shared rows and
 * the anchor's window rows). Notes "k=.." for the run log. */
int32_t lopa_auto_choose(lopa_auto *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t cap,
                         int32_t shared_rows, int32_t window_rows);

#endif
