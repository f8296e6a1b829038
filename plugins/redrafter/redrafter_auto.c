/* ReDrafter's `auto` choice of W and L (see redrafter_auto.h). */
#include "redrafter_auto.h"

#include <math.h>
#include <stdio.h>

#define RD_AUTO_MAX_L 16
#define RD_AUTO_CANDIDATES (1 + RD_AUTO_WIDTHS * (RD_AUTO_MAX_L - 1))
#define RD_AUTO_DRAFT_PRIOR 0.05 /* a drafter step until measured: a small RNN next to the model */
#define RD_AUTO_DRAFT_EWMA 0.2

void rd_auto_init(rd_auto_seq *a) {
  for (int32_t i = 0; i < RD_AUTO_WIDTHS; ++i)
    spec_accept_init(&a->acc[i], 1.0 - (1.0 - SPEC_AUTO_PRIOR_P) / sqrt((double)(1 << i)));
  a->draft_cost = RD_AUTO_DRAFT_PRIOR;
  a->draft_measured = 0;
  a->plain_cost = 0.0;
  a->plain_measured = 0;
  a->last_width = -1;
  a->last_depth = -1;
  a->last_beams = 1;
  a->tree_total = 0;
  for (int32_t i = 0; i < RD_AUTO_WIDTHS; ++i) a->width_seen[i] = 0;
}

static int32_t width_index(int32_t W) {
  int32_t i = 0;
  while (i + 1 < RD_AUTO_WIDTHS && (1 << (i + 1)) <= W) ++i;
  return i;
}

/* An exponentially weighted mean whose first sample replaces the prior and whose later ones are
 * clipped to twice the mean, so one step the OS preempted does not swing the choice. */
static void fold(double *mean, int32_t *measured, double x) {
  if (*measured && x > 2.0 * *mean) x = 2.0 * *mean;
  *mean = *measured ? *mean + RD_AUTO_DRAFT_EWMA * (x - *mean) : x;
  *measured = 1;
}

/* The last step's plan + accept time: a plain step's is what every step pays; a tree step's extra
 * is spread over its drafter beam steps (L-1 steps of W beams). */
static void fold_decoder_cost(rd_auto_seq *a, const specd_host_api *api, specd_seq *s) {
  if (a->last_depth < 0) return;
  const double c = api->seq_decoder_cost(s);
  if (c <= 0.0) return;
  if (a->last_depth == 0) {
    fold(&a->plain_cost, &a->plain_measured, c);
    return;
  }
  /* a drafter's cost next to the model varies by 100x between a tiny model (host-op overhead
   * dominates) and a 1B one: the first measurement replaces the prior */
  const double extra = c > a->plain_cost ? c - a->plain_cost : 0.0;
  fold(&a->draft_cost, &a->draft_measured, extra / ((double)a->last_depth * a->last_beams));
}

/* A tree step's exploring choice: among the candidates of the width that ran least recently (other
 * than the chosen candidate c's), the one with the most expected tokens per unit of cost. */
static int32_t explore(rd_auto_seq *a, const double *tokens, const double *cost, const int32_t *cw, int32_t n,
                       int32_t c) {
  int32_t stale = -1, best = c;
  for (int32_t i = 1; i < n; ++i) {
    const int32_t wi = width_index(cw[i]);
    if (wi != width_index(cw[c]) && (stale < 0 || a->width_seen[wi] < a->width_seen[stale])) stale = wi;
  }
  if (stale < 0) return c; /* one width only */
  double best_rate = -1.0;
  for (int32_t i = 1; i < n; ++i) {
    if (width_index(cw[i]) != stale || !(cost[i] > 0.0)) continue;
    if (tokens[i] / cost[i] > best_rate) best_rate = tokens[i] / cost[i], best = i;
  }
  return best;
}

void rd_auto_choose(rd_auto_seq *a, const specd_host_api *api, specd_host *h, specd_seq *s, int32_t w_auto,
                    int32_t l_auto, int32_t *W, int32_t *L) {
  double tokens[RD_AUTO_CANDIDATES], cost[RD_AUTO_CANDIDATES];
  int32_t cw[RD_AUTO_CANDIDATES], cl[RD_AUTO_CANDIDATES];
  fold_decoder_cost(a, api, s);
  const int32_t lmax = *L < RD_AUTO_MAX_L ? *L : RD_AUTO_MAX_L;
  int32_t n = 1;
  tokens[0] = 1.0;
  cost[0] = api->step_cost(h, 1) + a->plain_cost;
  cw[0] = *W, cl[0] = 1;
  for (int32_t wi = 0; wi < RD_AUTO_WIDTHS; ++wi) {
    const int32_t w = w_auto ? 1 << wi : *W;
    if (w > *W || (!w_auto && wi > 0)) break;
    const spec_accept *acc = &a->acc[width_index(w)];
    for (int32_t l = l_auto ? 2 : lmax; l <= lmax; ++l, ++n) {
      tokens[n] = spec_expected_tokens(acc, l - 1);
      cost[n] = api->step_cost(h, 1 + w * (l - 1)) + a->plain_cost + a->draft_cost * w * (l - 1);
      cw[n] = w, cl[n] = l;
    }
  }
  /* the probe's counter lives in width 1's statistics: one per sequence is enough */
  int32_t c = spec_auto_choose(&a->acc[0], tokens, cost, n);
  /* every tree step counts in tree_total (set below), so this is one tree step in RD_AUTO_EXPLORE */
  if (c > 0 && (a->tree_total + 1) % RD_AUTO_EXPLORE == 0) c = explore(a, tokens, cost, cw, n, c);
  *W = cw[c];
  *L = cl[c];
  a->last_width = *L >= 2 ? width_index(*W) : -1;
  a->last_depth = *L - 1;
  a->last_beams = *W > 0 ? *W : 1;
  if (*L >= 2) a->width_seen[a->last_width] = ++a->tree_total;
  char label[24];
  if (*L >= 2)
    snprintf(label, sizeof label, "W=%d,L=%d", (int)*W, (int)*L);
  else
    snprintf(label, sizeof label, "plain");
  api->seq_note_setting(s, label);
}

void rd_auto_record(rd_auto_seq *a, int32_t accepted) {
  if (a->last_width >= 0) spec_accept_record(&a->acc[a->last_width], a->last_depth, accepted);
}
