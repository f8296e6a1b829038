/* LoPA's `auto` (option auto=1): how many lookahead branches the next round spawns
 * (plugins/common/spec_auto.h's choice). LoPA is lossy, so auto changes what is generated, not only
 * how fast; it is therefore opt-in and the default stays D2F (k = 0).
 *
 * Progress of a round is the positions it decoded: the winner's anchor fill, plus the one position
 * a winning lookahead brought. It is kept as an exponentially weighted mean per branch count; a
 * count not yet tried is guessed from k = 0's mean as 1 + k/4 times it (lookahead pays off in the
 * LoPA paper's measurements), so branches get tried and then judged on what they do. The cost of
 * k branches is the host's step_cost for the shared segment plus k + 1 copies of the anchor's window,
 * taken from the last round's layout. */
#ifndef SPECD_LOPA_AUTO_H
#define SPECD_LOPA_AUTO_H

#include <specd/decoder.h>

#include "../common/spec_auto.h"
#include "lopa_logic.h"

typedef struct lopa_auto {
  double progress[LOPA_MAX_LOOKAHEAD + 1]; /* mean positions decoded per round, by branch count */
  int32_t seen[LOPA_MAX_LOOKAHEAD + 1];    /* rounds behind each mean */
  spec_accept probe;                       /* only its plain-run counter is used (the probe) */
} lopa_auto;

void lopa_auto_init(lopa_auto *a);
/* A round with k lookahead branches decoded `decoded` positions. */
void lopa_auto_record(lopa_auto *a, int32_t k, int32_t decoded);
/* The branch count for the next round, at most cap, from the last round's layout (shared rows and
 * the anchor's window rows). Notes "k=.." for the run log. */
int32_t lopa_auto_choose(lopa_auto *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t cap,
                         int32_t shared_rows, int32_t window_rows);

#endif
