/* LoPA's `auto` (option auto=1): each round, plain steps or D2F/LoPA rounds, and how many
 * lookahead branches a round spawns (plugins/common/spec_auto.h's choice). LoPA is lossy, so auto
 * changes what is generated, not only how fast; it is therefore opt-in and the default stays D2F
 * (k = 0).
 *
 * A plain step (logit-shift models only) is ar's step on the diffusion model: one row, the token
 * the row before it predicts; it costs step_cost(1) for one token. It is the fallback when no
 * round pays, e.g. on a model so small that a window of blocks costs many one-row forwards (on
 * stories260K-d2f a D2F round cost about 13 of them for 1.7 tokens). Blocks in flight are finished
 * first (with c->hold no new one starts); a return to D2F starts a block after the plain tokens.
 *
 * Progress of a round is the positions it decoded: the winner's anchor fill, plus the one position
 * a winning lookahead brought. Per branch count it is a decayed mean (it follows the text) read with
 * a prior worth LOPA_AUTO_PRIOR_N rounds: LOPA_AUTO_PRIOR_D2F positions for k = 0, and for k > 0
 * 1 + k/4 times k = 0's estimate (lookahead pays off in the LoPA paper's measurements), so branches
 * get tried and then judged on what they do. k branches are expected to decode at least what
 * k - 1 do (the anchor and the fewer branches are still among the candidates). A round's progress
 * is a small, noisy count: when the first round of a count was taken as its mean, a count that once
 * decoded one position stayed at one and lost to plain D2F for good. The cost of k branches is the
 * host's step_cost for the shared segment plus k + 1 copies of the anchor's window, from the last
 * D2F round's layout. */
#ifndef SPECD_LOPA_AUTO_H
#define SPECD_LOPA_AUTO_H

#include <specd/decoder.h>

#include "../common/spec_auto.h"
#include "lopa_logic.h"

#define LOPA_AUTO_PRIOR_N 3.0 /* rounds the prior is worth */
/* Positions a D2F round is expected to decode before any is seen. Forced progress alone gives 1,
 * which can never beat a plain step, so D2F would never be tried; the trained D2F models here
 * decode 1.7 per round at the default thresholds, the D2F paper's models 2 to 4. */
#define LOPA_AUTO_PRIOR_D2F 2.0
#define LOPA_AUTO_DECAY 0.98  /* per recorded round: the means follow the last ~50 rounds */
#define LOPA_AUTO_GAIN 0.25   /* the prior: k branches decode 1 + k/4 times what none do */
#define LOPA_AUTO_PLAIN (-1)  /* lopa_auto_pick's plain step */

typedef struct lopa_auto {
  double sum[LOPA_MAX_LOOKAHEAD + 1];    /* decayed positions decoded, by branch count */
  double rounds[LOPA_MAX_LOOKAHEAD + 1]; /* decayed rounds behind each sum */
  int32_t shared_rows, window_rows;      /* the last D2F round's layout (0: none seen) */
  spec_accept probe;                     /* only its plain-run counter is used: the probe of branches */
  spec_accept plain_probe;               /* ... the probe of a round after plain steps */
} lopa_auto;

void lopa_auto_init(lopa_auto *a);
/* A round with k lookahead branches decoded `decoded` positions (other k or decoded < 0: ignored). */
void lopa_auto_record(lopa_auto *a, int32_t k, int32_t decoded);
/* The layout of a D2F round: rows shared by every candidate, and the anchor's own rows. */
void lopa_auto_note_layout(lopa_auto *a, int32_t shared_rows, int32_t window_rows);
/* The positions a round with k branches is expected to decode (0 <= k <= LOPA_MAX_LOOKAHEAD). */
double lopa_auto_expected(const lopa_auto *a, int32_t k);
/* The choice from costs in one-row steps: cost[0] a plain step's, cost[1 + k] a round's with k
 * branches (0 <= k <= cap). The branch count with the most expected tokens per cost (k = 0 the
 * plain candidate of spec_auto_choose, so more branches are probed while D2F wins), then, when
 * plain is 1, that round or LOPA_AUTO_PLAIN, whichever gives more; a probe of a round after plain
 * steps is priced as a block of bs rounds. */
int32_t lopa_auto_pick(lopa_auto *a, const double *cost, int32_t cap, int plain, int32_t bs);
/* lopa_auto_pick with the host's step_cost for the last D2F layout (2 blocks of bs when none was
 * seen). Notes "plain" or "k=.." for the run log. */
int32_t lopa_auto_choose(lopa_auto *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t cap,
                         int plain, int32_t bs);

/* What the finished sequences on this model learned, kept in the host's decoder memory (decoder
 * ABI 1.3) from one request to the next, so a short request does not spend its rounds relearning
 * whether D2F rounds pay here. Its round counts are capped at LOPA_AUTO_SEED_ROUNDS per branch
 * count, so the sequence's own text outweighs them within a few rounds. */
#define LOPA_AUTO_SEED_ROUNDS 8.0
#define LOPA_AUTO_HIST_VERSION 1u
typedef struct lopa_auto_hist {
  uint32_t version; /* LOPA_AUTO_HIST_VERSION once written; the host hands the block out zeroed */
  uint32_t size;    /* sizeof(lopa_auto_hist) of the build that wrote it */
  lopa_auto autos;  /* the last finished sequence's */
} lopa_auto_hist;
/* Start a freshly initialised a from h (nothing when h is NULL or holds nothing of this layout). */
void lopa_auto_seed(lopa_auto *a, const lopa_auto_hist *h);
/* Keep a finishing sequence's statistics in h (when h is not NULL). */
void lopa_auto_keep(lopa_auto_hist *h, const lopa_auto *a);

#endif
