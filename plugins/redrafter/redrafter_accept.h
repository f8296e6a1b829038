/* Choosing what a ReDrafter step keeps from its verified tree (docs: methods/redrafter.md §5).
 *
 * exact      §5.3's rule for deterministic drafts: from the root, y = sample(P_u); descend to the
 *            child whose token is y, else stop with y as the next token. Every kept token is one
 *            api->sample() of the logits ar would see, so greedy output equals ar's and the
 *            sampled law is ar's.
 * reference  §5.2, the Apple / TensorRT-LLM rule: per beam, accept draft x while u < P(x)/Q(x),
 *            take the beam with the longest run, then sample the bonus (whole beam accepted) or
 *            the residual max(0, P - Q). Greedy output still equals ar's; sampled output is
 *            known to be biased (§5.3) and is offered for parity with the reference. */
#ifndef SPECD_REDRAFTER_ACCEPT_H
#define SPECD_REDRAFTER_ACCEPT_H

#include <specd/decoder.h>

#include "redrafter_tree.h"

typedef struct rd_verdict {
  int32_t n;    /* accepted drafts; path[0..n] are packed nodes, path[0] = 0 the root */
  int32_t next; /* the next token (bonus, residual or the sampled non-child) */
} rd_verdict;

/* Rule exact over tree t; path has room for t->L nodes. */
int rd_accept_exact(const specd_host_api *api, specd_seq *s, const specd_outputs *o, const rd_tree *t, int32_t *path,
                    rd_verdict *v);

/* Rule reference over beams[W][L] and their truncated drafter distributions q_ids/q_logq
 * [W][L-1][topk]; probs is scratch of vocab floats. */
int rd_accept_reference(const specd_host_api *api, specd_seq *s, const specd_outputs *o, const rd_tree *t,
                        const int32_t *beams, const int32_t *q_ids, const float *q_logq, int32_t topk, int32_t vocab,
                        float *probs, int32_t *path, rd_verdict *v);

#endif
