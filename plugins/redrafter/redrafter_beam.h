/* One step of the drafter's beam search (docs: methods/redrafter.md §3), on host data: every live
 * beam offers its K most likely next tokens; the W best cumulative scores survive.
 *
 * Pure functions, so tests compile this file without a host. */
#ifndef SPECD_REDRAFTER_BEAM_H
#define SPECD_REDRAFTER_BEAM_H

#include <stdint.h>

#define RD_MAX_BEAMS 64

/* logq[i] = vals[i] - logsumexp(vals[0..K)): the log-distribution truncated to the K values the
 * drafter kept (the reference's top-50 truncation, §2.2). */
void rd_truncated_logq(const float *vals, int32_t K, float *logq);

/* Beams b < alive (alive <= RD_MAX_BEAMS) with cumulative score[b] offer ids[b][0..K) with
 * log-probabilities logq[b][0..K), sorted descending. Chooses the W best score[b] + logq[b][r]:
 * parent[w], token[w], rank[w] (= r) and score_out[w], best first; ties go to the lower parent,
 * then the lower rank. Returns how many were chosen: min(W, alive * K). */
int32_t rd_beam_select(int32_t alive, int32_t K, int32_t W, const float *score, const int32_t *ids,
                       const float *logq, int32_t *parent, int32_t *token, int32_t *rank, float *score_out);

#endif
