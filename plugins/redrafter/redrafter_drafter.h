/* The ReDrafter drafter (docs: methods/redrafter.md §2–§3) run through the host's tensor ops, so it
 * runs wherever the model does: an RNN over the drafted tokens' embeddings, D residual SiLU blocks
 * over [h ; s] and its own vocabulary head, searched with W beams.
 *
 * The drafter file is a GGUF side file (format: tools/train/README.md): int32 metadata
 * specd.redrafter.{vocab,input_dim,state_dim,exit_dim,n_blocks,k_trained}, string
 * specd.redrafter.target_digest, F32 tensors redrafter.rnn_w.weight, redrafter.rnn_u.{weight,bias},
 * optional redrafter.input_proj.{weight,bias}, redrafter.block.{j}.{weight,bias},
 * redrafter.head.weight. Token embeddings are the target model's token_embd.weight. */
#ifndef SPECD_REDRAFTER_DRAFTER_H
#define SPECD_REDRAFTER_DRAFTER_H

#include <specd/decoder.h>

#define RD_MAX_BLOCKS 8
#define RD_TOPK 50 /* drafter distributions are truncated to their 50 most likely tokens (§2.2) */

typedef struct rd_drafter {
  const specd_host_api *api;
  specd_host *host;
  int32_t vocab, in_dim, state_dim, exit_dim, n_blocks, k_trained, topk;
  int has_proj;
  int32_t wmax, lmax;
  specd_tensor embd, rnn_w, rnn_u, rnn_b, proj_w, proj_b, block_w[RD_MAX_BLOCKS], block_b[RD_MAX_BLOCKS], head;
  specd_buf *emb, *x1, *x2, *state, *z, *a, *t, *logits; /* device scratch, wmax rows each */
  float *host_state, *host_state2;                       /* [wmax][state_dim] */
  int32_t *last, *parent, *token, *rank, *top_ids;       /* [wmax], top_ids [wmax][topk] */
  float *score, *score2, *top_vals, *top_logq;
  float *cum2;                                           /* [wmax][lmax] */
  int32_t *beams2;                                       /* [wmax][lmax] */
  int32_t *q_ids2;                                       /* [wmax][lmax-1][topk] */
  float *q_logq2;
} rd_drafter;

/* Map the drafter at path and check it against the model; scratch for up to wmax beams of length
 * lmax. On error the request is refused with the reason (SPECD_E_IO, SPECD_E_BAD_MODEL for a
 * malformed drafter or one trained for another model) and d holds nothing. */
int rd_drafter_open(rd_drafter *d, const specd_host_api *api, specd_host *h, const specd_model_info *model,
                    const char *path, int32_t wmax, int32_t lmax);
void rd_drafter_close(rd_drafter *d);

/* Beam search from the hidden state h [in_dim] and the root token g0: fills beams[W][L] (column 0
 * is g0) and, for every beam and draft step k < L-1, the truncated drafter distribution it was
 * drafted from: q_ids/q_logq [W][L-1][topk], plus score[W] = sum of the drafted tokens' logq and
 * cum[W][L] = that sum up to each depth (cum[w][0] = 0). W <= wmax, 2 <= L <= lmax. Returns
 * SPECD_OK or a host error code. */
int rd_drafter_beams(rd_drafter *d, const float *h, int32_t g0, int32_t W, int32_t L, int32_t *beams, int32_t *q_ids,
                     float *q_logq, float *score, float *cum);

#endif
