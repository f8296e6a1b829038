/* ReDrafter's `auto`: the beam width W and length L of each step (plugins/common/spec_auto.h).
 *
 * Acceptance by depth is kept per candidate width (1, 2, 4, ... up to the instance's W), since wider
 * trees accept deeper; a width's prior mean grows with it (1 - (1 - p0)/sqrt(W)) so wider trees get
 * tried and then judged on what they do. The cost of a candidate is the host's step_cost for its
 * 1 + W(L-1) tree rows plus the decoder's own work: what a plain step's plan + accept takes, and
 * W(L-1) drafter beam steps (L-1 sequential steps of W beams each: the beam search's work grows with
 * both) priced from what earlier tree steps took beyond that (both from the host's
 * seq_decoder_cost).
 * A width's acceptance is only learned from steps of that width: once one width wins, the others
 * would never be measured again, however well they would do. So every RD_AUTO_EXPLORE tree steps,
 * one step takes the best candidate of the allowed width measured least recently instead. */
#ifndef SPECD_REDRAFTER_AUTO_H
#define SPECD_REDRAFTER_AUTO_H

#include <specd/decoder.h>

#include "../common/spec_auto.h"

#define RD_AUTO_WIDTHS 6 /* 1, 2, 4, 8, 16, 32 */
#define RD_AUTO_EXPLORE 32 /* tree steps between two steps of the least recently measured width */

typedef struct rd_auto_seq {
  spec_accept acc[RD_AUTO_WIDTHS];
  double draft_cost;   /* one beam's drafter step beyond a plain step's decoder work, in step_cost units */
  double plain_cost;   /* the decoder's work in a plain step (sampling, bookkeeping), same units */
  int32_t draft_measured, plain_measured;
  int32_t last_width;  /* the width index of the last step's tree, -1 for a plain step */
  int32_t last_depth;  /* L - 1 of the last step (0: plain), -1 before the first choice */
  int32_t last_beams;  /* W of the last tree step */
  int64_t width_seen[RD_AUTO_WIDTHS]; /* the tree step count when each width last ran (0: never) */
  int64_t tree_total;  /* tree steps so far */
} rd_auto_seq;

void rd_auto_init(rd_auto_seq *a);
/* Choose this step's W and L. *W and *L come in as the fixed values (or the caps for the auto
 * ones: W the widest, L the longest the step can have, >= 2) and leave as the choice; *L = 1 means
 * a plain step. w_auto / l_auto: which of them to choose. Notes the choice as "W=..,L=.." or "plain". */
void rd_auto_choose(rd_auto_seq *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t w_auto,
                    int32_t l_auto, int32_t *W, int32_t *L);
/* The step's tree accepted `accepted` drafts (call only after a step rd_auto_choose planned). */
void rd_auto_record(rd_auto_seq *a, int32_t accepted);

#endif
