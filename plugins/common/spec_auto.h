/* spec_auto.h: how much to speculate, shared by the decoders' `auto` settings (header-only C).
 *
 * Each speculative decoder keeps, per sequence, the live acceptance of its drafts by depth:
 * p_d = P(draft d is accepted | drafts 1..d-1 were), counted with exponential forgetting so the
 * estimate follows the text, and read with a Beta prior (SPEC_AUTO_PRIOR_N pseudo-steps; its mean
 * SPEC_AUTO_PRIOR_P at depth 1, depth d-1's estimate below) so a sequence starts from a neutral
 * guess rather than from nothing. A chain of k
 * drafts then yields E(k) = 1 + sum_{j<=k} prod_{d<=j} p_d tokens per step, and costs the host's
 * step_cost(rows(k)) plus the decoder's own work, both in units of a one-row forward (decoder ABI
 * 1.2). spec_auto_choose picks the candidate with the most expected tokens per unit of time;
 * candidate 0 is the plain one-row step (1 token for 1), which wins unless speculation pays.
 * When plain steps win SPEC_AUTO_PROBE times in a row, the best speculative candidate runs once so
 * the acceptance estimate stays live; each probe after which plain steps still win doubles the wait
 * (up to SPEC_AUTO_PROBE_MAX), so where speculation never pays the probes cost almost nothing. The choice only changes speed: every decoder verifies
 * whatever it drafts with the exact rule, so lossless decoders stay lossless.
 * Nothing here allocates; a spec_accept is plain data a decoder embeds in its sequence state. */
#ifndef SPECD_PLUGINS_SPEC_AUTO_H
#define SPECD_PLUGINS_SPEC_AUTO_H

#include <stddef.h>
#include <stdint.h>

#define SPEC_AUTO_MAX_DEPTH 64
#define SPEC_AUTO_PRIOR_P 0.5  /* neutral: a coin per draft until the sequence shows otherwise */
#define SPEC_AUTO_PRIOR_N 2.0  /* pseudo-steps behind the prior: a few real steps outweigh it */
#define SPEC_AUTO_DECAY 0.98   /* per recorded step: the estimate follows the last ~50 steps */
#define SPEC_AUTO_MARGIN 1.02  /* a costlier candidate must beat a cheaper one by 2% (timing noise) */
#define SPEC_AUTO_PROBE 16     /* plain steps in a row before one speculative step re-measures */
#define SPEC_AUTO_PROBE_MAX 1024
#define SPEC_AUTO_PROBE_SHARE 0.02 /* a probe waits until its extra cost is at most this share of the plain steps before it */

typedef struct spec_accept {
  double prior_p;                         /* the prior mean of every p_d */
  double tries[SPEC_AUTO_MAX_DEPTH + 1];  /* [d], d >= 1: decayed count of steps that verified depth d */
  double hits[SPEC_AUTO_MAX_DEPTH + 1];   /* [d]: ... of which draft d was accepted */
  int32_t plain_run;                      /* plain choices in a row (for the probe) */
  int32_t probe_every;                    /* plain choices before the next probe */
} spec_accept;

static inline void spec_accept_init(spec_accept *a, double prior_p) {
  a->prior_p = prior_p > 0.0 && prior_p < 1.0 ? prior_p : SPEC_AUTO_PRIOR_P;
  for (int32_t d = 0; d <= SPEC_AUTO_MAX_DEPTH; ++d) a->tries[d] = a->hits[d] = 0.0;
  a->plain_run = 0;
  a->probe_every = SPEC_AUTO_PROBE;
}

/* A verified step: `drafted` drafts in a chain (or the accepted path's depth budget in a tree), of
 * which the first `accepted` were accepted. Depths 1..accepted were hits; depth accepted+1, when it
 * was drafted, a miss; deeper drafts were never reached and say nothing. */
static inline void spec_accept_record(spec_accept *a, int32_t drafted, int32_t accepted) {
  if (drafted <= 0) return;
  if (drafted > SPEC_AUTO_MAX_DEPTH) drafted = SPEC_AUTO_MAX_DEPTH;
  if (accepted > drafted) accepted = drafted;
  for (int32_t d = 1; d <= SPEC_AUTO_MAX_DEPTH; ++d) {
    a->tries[d] *= SPEC_AUTO_DECAY;
    a->hits[d] *= SPEC_AUTO_DECAY;
  }
  for (int32_t d = 1; d <= accepted + 1 && d <= drafted; ++d) {
    a->tries[d] += 1.0;
    if (d <= accepted) a->hits[d] += 1.0;
  }
}

/* Depth d's posterior mean given the prior mean `above` (depth d-1's estimate, prior_p at depth 1). */
static inline double spec_accept_step(const spec_accept *a, int32_t d, double above) {
  return (a->hits[d] + above * SPEC_AUTO_PRIOR_N) / (a->tries[d] + SPEC_AUTO_PRIOR_N);
}

/* P(draft d accepted | 1..d-1 were): the posterior mean under a Beta prior whose mean is depth
 * d-1's estimate (prior_p at depth 1). A depth never verified is expected to accept as the one
 * above it: with a fixed prior there, a sequence whose drafts were all accepted up to the depth it
 * ran saw every deeper draft at the neutral 0.5 and never tried one (redrafter auto kept L = 4 on the
 * 1B model where L = 6 was faster). */
static inline double spec_accept_p(const spec_accept *a, int32_t d) {
  if (d < 1 || d > SPEC_AUTO_MAX_DEPTH) return 0.0;
  double p = a->prior_p;
  for (int32_t j = 1; j <= d; ++j) p = spec_accept_step(a, j, p);
  return p;
}

/* Expected tokens of a step verifying a chain of k drafts: 1 + sum_{j=1..k} prod_{d=1..j} p_d. */
static inline double spec_expected_tokens(const spec_accept *a, int32_t k) {
  double e = 1.0, reach = 1.0, p = a->prior_p;
  if (k > SPEC_AUTO_MAX_DEPTH) k = SPEC_AUTO_MAX_DEPTH;
  for (int32_t j = 1; j <= k; ++j) {
    p = spec_accept_step(a, j, p);
    reach *= p;
    e += reach;
  }
  return e;
}

/* What the finished sequences on this model learned, for a decoder to keep in the host's decoder
 * memory (decoder ABI 1.3) and start the next sequence from instead of the neutral prior, so a short
 * request does not spend its few steps relearning the model's acceptance. Seeded counts are capped
 * at SPEC_AUTO_SEED_STEPS verified steps, so the sequence's own text outweighs them within a few
 * dozen steps; the probe counters are the sequence's own. */
#define SPEC_AUTO_SEED_STEPS 8.0
#define SPEC_AUTO_HIST_VERSION 1u
typedef struct spec_accept_hist {
  uint32_t version; /* SPEC_AUTO_HIST_VERSION once written; the host hands the block out zeroed */
  uint32_t size;    /* sizeof(spec_accept_hist) of the build that wrote it */
  spec_accept acc;  /* the last finished sequence's that verified a draft */
} spec_accept_hist;

/* Scale a's counts down to at most `steps` verified steps at depth 1 (the ratios stay). */
static inline void spec_accept_cap(spec_accept *a, double steps) {
  const double scale = a->tries[1] > steps ? steps / a->tries[1] : 1.0;
  for (int32_t d = 0; d <= SPEC_AUTO_MAX_DEPTH; ++d) a->tries[d] *= scale, a->hits[d] *= scale;
}

/* Start a freshly initialised a from h: its counts capped (nothing when h is NULL or holds nothing
 * of this layout). */
static inline void spec_accept_seed(spec_accept *a, const spec_accept_hist *h) {
  if (h == NULL || h->version != SPEC_AUTO_HIST_VERSION || h->size != sizeof *h) return;
  for (int32_t d = 0; d <= SPEC_AUTO_MAX_DEPTH; ++d) a->tries[d] = h->acc.tries[d], a->hits[d] = h->acc.hits[d];
  spec_accept_cap(a, SPEC_AUTO_SEED_STEPS);
}

/* Keep a finishing sequence's acceptance in h (when h is not NULL and a holds a verified draft, its
 * own or seeded: a sequence that only took plain steps writes back what it was seeded with, the same
 * estimates, and one that was never seeded and never verified leaves h as it was). */
static inline void spec_accept_keep(spec_accept_hist *h, const spec_accept *a) {
  if (h == NULL || !(a->tries[1] > 0.0)) return;
  h->version = SPEC_AUTO_HIST_VERSION;
  h->size = sizeof *h;
  h->acc = *a;
}

/* The index in [0, n) with the most tokens[i] / cost[i]. Candidates come cheapest first with 0 the
 * plain step; a later one must beat the best so far by SPEC_AUTO_MARGIN. A candidate with a cost
 * <= 0 is never chosen (except 0, which is always valid). */
static inline int32_t spec_auto_argmax(const double *tokens, const double *cost, int32_t n) {
  int32_t best = 0;
  double best_rate = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    if (i > 0 && !(cost[i] > 0.0)) continue;
    const double rate = tokens[i] / (cost[i] > 0.0 ? cost[i] : 1.0);
    if (i == 0 || rate > best_rate * SPEC_AUTO_MARGIN) {
      best = i;
      best_rate = rate;
    }
  }
  return best;
}

/* spec_auto_argmax with the probe: after probe_every plain choices in a row, the best candidate
 * other than 0 runs once, and the next probe waits twice as long; a speculative candidate that wins
 * on its own resets the wait to SPEC_AUTO_PROBE. A probe that costs much more than a plain step
 * waits longer still, until its extra cost is at most SPEC_AUTO_PROBE_SHARE of the plain steps run
 * since the last one: where drafts never pay, probing then costs at most that share of the time
 * (on a CPU, where a probe's rows cost nearly as much as whole forwards, the doubling alone left
 * about 5 % on a short generation). A probe's extra cost is probe_steps times the difference of
 * one step's: 1 for a decoder that can return to plain steps at once, more for one that must
 * first finish what the probe started (lopa finishes a block). n <= 1 always gives 0. */
static inline int32_t spec_auto_choose_probing(spec_accept *a, const double *tokens, const double *cost, int32_t n,
                                               double probe_steps) {
  const int32_t best = spec_auto_argmax(tokens, cost, n);
  if (n <= 1) return 0;
  if (best != 0) {
    a->plain_run = 0;
    a->probe_every = SPEC_AUTO_PROBE;
    return best;
  }
  if (++a->plain_run < a->probe_every) return 0;
  const int32_t probe = 1 + spec_auto_argmax(tokens + 1, cost + 1, n - 1);
  if (cost[0] > 0.0 && probe_steps * (cost[probe] - cost[0]) > SPEC_AUTO_PROBE_SHARE * a->plain_run * cost[0]) return 0;
  a->plain_run = 0;
  if (a->probe_every < SPEC_AUTO_PROBE_MAX) a->probe_every *= 2;
  return probe;
}

/* spec_auto_choose_probing for a decoder whose probe is one step. */
static inline int32_t spec_auto_choose(spec_accept *a, const double *tokens, const double *cost, int32_t n) {
  return spec_auto_choose_probing(a, tokens, cost, n, 1.0);
}

#endif /* SPECD_PLUGINS_SPEC_AUTO_H */
