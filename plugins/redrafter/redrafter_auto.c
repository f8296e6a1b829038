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
  for (int32_t i = 0; i < RD_AUTO_WIDTHS; ++i) a->width_seen[i] = 0, a->fill[i] = 1.0, a->fill_measured[i] = 0;
}

void rd_auto_seed(rd_auto_seq *a, const rd_auto_hist *h) {
  if (h == NULL || h->version != RD_AUTO_HIST_VERSION || h->size != sizeof *h) return;
  const rd_auto_seq fresh = *a;
  /* everything learned (acceptance, costs, packing, and the exploring steps, which count on across
   * requests: most are shorter than RD_AUTO_EXPLORE tree steps, and with a count that restarted at
   * each one a width that lost was never measured) ... */
  *a = h->seq;
  /* ... but the acceptance capped, and this sequence's own: no last step, probes from the start */
  for (int32_t i = 0; i < RD_AUTO_WIDTHS; ++i) {
    spec_accept *acc = &a->acc[i];
    spec_accept_cap(acc, RD_AUTO_SEED_STEPS);
    acc->plain_run = fresh.acc[i].plain_run;
    acc->probe_every = fresh.acc[i].probe_every;
  }
  a->last_width = fresh.last_width;
  a->last_depth = fresh.last_depth;
  a->last_beams = fresh.last_beams;
}

void rd_auto_keep(rd_auto_hist *h, const rd_auto_seq *a) {
  if (h == NULL || a->tree_total == 0) return;
  h->version = RD_AUTO_HIST_VERSION;
  h->size = sizeof *h;
  h->seq = *a;
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

/* A width's share of drafted tokens its packed trees keep: its own once measured, else the nearest
 * narrower width's (wider trees share at least as much), else none shared. */
static double fill_of(const rd_auto_seq *a, int32_t wi) {
  while (wi > 0 && !a->fill_measured[wi]) --wi;
  return a->fill_measured[wi] ? a->fill[wi] : 1.0;
}

/* p[wi][d], d = 1..lmax - 1: P(draft d accepted | 1..d-1 were) for a tree of width index wi: its
 * posterior mean under a prior of the larger of its own depth d-1 estimate (its prior mean at depth
 * 1) and the next narrower width's depth d estimate. */
static void accept_by_width(const rd_auto_seq *a, int32_t widths, int32_t lmax, double p[][RD_AUTO_MAX_L]) {
  for (int32_t wi = 0; wi < widths; ++wi) {
    double above = a->acc[wi].prior_p;
    for (int32_t d = 1; d < lmax; ++d) {
      const double prior = wi > 0 && p[wi - 1][d] > above ? p[wi - 1][d] : above;
      above = p[wi][d] = spec_accept_step(&a->acc[wi], d, prior);
    }
  }
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
  double p[RD_AUTO_WIDTHS][RD_AUTO_MAX_L];
  accept_by_width(a, width_index(*W) + 1, lmax, p);
  int32_t n = 1;
  tokens[0] = 1.0;
  cost[0] = api->step_cost(h, 1) + a->plain_cost;
  cw[0] = *W, cl[0] = 1;
  for (int32_t wi = 0; wi < RD_AUTO_WIDTHS; ++wi) {
    const int32_t w = w_auto ? 1 << wi : *W;
    if (w > *W || (!w_auto && wi > 0)) break;
    const int32_t wx = width_index(w);
    double reach = 1.0, expect = 1.0;
    for (int32_t l = 2; l <= lmax; ++l) {
      reach *= p[wx][l - 1];
      expect += reach;
      if (!l_auto && l < lmax) continue;  /* a fixed L: only its candidate */
      tokens[n] = expect;
      const int32_t rows = 1 + (int32_t)lround(w * (l - 1) * fill_of(a, wx));
      cost[n] = api->step_cost(h, rows) + a->plain_cost + a->draft_cost * w * (l - 1);
      cw[n] = w, cl[n] = l;
      ++n;
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

void rd_auto_note_tree(rd_auto_seq *a, int32_t nodes) {
  if (a->last_width < 0 || a->last_depth < 1 || nodes < 1) return;
  const double share = (double)(nodes - 1) / ((double)a->last_beams * a->last_depth);
  fold(&a->fill[a->last_width], &a->fill_measured[a->last_width], share < 1.0 ? share : 1.0);
}

void rd_auto_record(rd_auto_seq *a, int32_t accepted) {
  if (a->last_width >= 0) spec_accept_record(&a->acc[a->last_width], a->last_depth, accepted);
}
