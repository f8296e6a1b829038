/* ReDrafter's `auto`: the beam width W and length L of each step (plugins/common/spec_auto.h).
 *
 * Acceptance by depth is kept per candidate width (1, 2, 4, ... up to the instance's W), since wider
 * trees accept deeper; a width's prior mean grows with it (1 - (1 - p0)/sqrt(W)), and at each depth
 * it is at least the next narrower width's estimate there (a wider beam search keeps about what the
 * narrower one drafts, so it accepts at least as deep), so wider trees get tried and then judged on
 * what they do. The cost of a candidate is the host's step_cost for its
 * tree's rows (1 + W(L-1) drafts times the share of them the width's packed trees have kept, since
 * beams share prefixes) plus the decoder's own work: what a plain step's plan + accept takes, and
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
  double fill[RD_AUTO_WIDTHS]; /* packed tree nodes beyond the root per W(L-1) drafted tokens */
  int32_t fill_measured[RD_AUTO_WIDTHS];
  int64_t tree_total;  /* tree steps so far */
} rd_auto_seq;

void rd_auto_init(rd_auto_seq *a);

/* What the finished sequences on this model learned, kept in the host's decoder memory (decoder
 * ABI 1.3) from one request to the next: a new sequence starts from it instead of the neutral
 * prior, so a short request does not spend its few steps relearning what earlier ones showed (each
 * width's acceptance, the drafter's cost). Its acceptance counts are capped at RD_AUTO_SEED_STEPS
 * steps, so the sequence's own text outweighs them within a few dozen steps. */
#define RD_AUTO_SEED_STEPS SPEC_AUTO_SEED_STEPS
#define RD_AUTO_HIST_VERSION 1u
typedef struct rd_auto_hist {
  uint32_t version; /* RD_AUTO_HIST_VERSION once written; the host hands the block out zeroed */
  uint32_t size;    /* sizeof(rd_auto_hist) of the build that wrote it */
  rd_auto_seq seq;  /* the last finished sequence that ran a tree step */
} rd_auto_hist;
/* Start a freshly initialised sequence from h (nothing when h is NULL or holds no sequence of
 * this layout yet). */
void rd_auto_seed(rd_auto_seq *a, const rd_auto_hist *h);
/* Keep a finishing sequence's statistics in h (when h is not NULL and the sequence ran a tree step). */
void rd_auto_keep(rd_auto_hist *h, const rd_auto_seq *a);
/* Choose this step's W and L. *W and *L come in as the fixed values (or the caps for the auto
 * ones: W the widest, L the longest the step can have, >= 2) and leave as the choice; *L = 1 means
 * a plain step. w_auto / l_auto: which of them to choose. Notes the choice as "W=..,L=.." or "plain". */
void rd_auto_choose(rd_auto_seq *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t w_auto,
                    int32_t l_auto, int32_t *W, int32_t *L);
/* The tree rd_auto_choose's step packed has `nodes` nodes, the root included (call after packing
 * and pruning). Beams that share a prefix share its nodes, so a wide tree verifies fewer rows than
 * its W(L-1) drafts: pricing it at 1 + W(L-1) rows made wide trees look dearer than they are. */
void rd_auto_note_tree(rd_auto_seq *a, int32_t nodes);
/* The step's tree accepted `accepted` drafts (call only after a step rd_auto_choose planned). */
void rd_auto_record(rd_auto_seq *a, int32_t accepted);

#endif
