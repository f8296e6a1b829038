/* LoPA / D2F bookkeeping for the lopa decoder: block records and states, the τ rules, per-position
 * confidence, branch scores, winner choice, lookahead spawning and the row layout of one round.
 * Plain C11, no allocation, no host calls; unit-tested by tests/test_lopa.cpp. Section numbers
 * refer to docs/methods/lopa.md. */
#ifndef SPECD_PLUGINS_LOPA_LOGIC_H
#define SPECD_PLUGINS_LOPA_LOGIC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOPA_MAX_LOOKAHEAD 16                      /* k ≤ 16 */
#define LOPA_MAX_CAND (LOPA_MAX_LOOKAHEAD + 1)     /* lookaheads + the anchor */

/* Block states (§1.5). The prompt is not a record: it is the pseudo-block in front of block 0. */
#define LOPA_ACTIVE 1
#define LOPA_TO_CACHE 2
#define LOPA_IN_CACHE 3

/* Ranking scores (§2.2). τ_conf always compares the token probability. */
#define LOPA_CONF_PROB 0
#define LOPA_CONF_MARGIN 1
#define LOPA_CONF_NEG_ENTROPY 2

typedef struct lopa_block {
  int32_t start, len;   /* absolute positions [start, start + len) */
  int32_t masks_left;
  int32_t state;        /* LOPA_ACTIVE, LOPA_TO_CACHE, LOPA_IN_CACHE */
  int32_t fully_active; /* 0: semi-activated (fills only above τ_conf), 1: forced progress allowed */
} lopa_block;

/* One candidate path (the anchor or a lookahead branch, §3.2). tok[i] is the token at position
 * prompt_len + i (the MASK id while unfilled); blocks[0..n_blocks) cover prompt_len.. contiguously. */
typedef struct lopa_path {
  int32_t n_blocks;
  int32_t eos;          /* an EOS was filled: no more blocks are added (§2.3 step 1) */
  int32_t look_pos;     /* the position this branch filled ahead of the anchor, -1 for the anchor */
  float creation_conf;  /* conf of that position when spawned (1 for the anchor) */
  lopa_block *blocks;   /* capacity lopa_config.max_blocks */
  int32_t *tok;         /* capacity lopa_config.gen_cap */
} lopa_path;

typedef struct lopa_config {
  int32_t bs;          /* block size */
  int32_t prompt_len;  /* P */
  int32_t gen_cap;     /* positions generation may use (≤ max_tokens, ≤ ctx_len - P) */
  int32_t max_blocks;  /* ceil(gen_cap / bs); the last block may be shorter than bs */
  int32_t mask_id, eos_id;
  int32_t vocab;
  float tau_add, tau_act, tau_conf;
  float alpha;         /* branch score = alpha * creation_conf + (1 - alpha) * mean conf (§3.2 step 5) */
  int32_t strategy;    /* LOPA_CONF_* */
  int32_t full_window; /* 0: block-causal (§1.4 mode 2), 1: full window (mode 3) */
  int32_t shift;       /* model logit shift (§1.3) */
  int32_t max_rows;    /* rows one step may add */
  int32_t hold;        /* 1: step 1 adds no block (auto is finishing the blocks in flight for plain steps) */
} lopa_config;

/* ---- paths and blocks (§1.5, §2.3) ---- */
void lopa_path_reset(lopa_path *p);
/* dst := src (blocks and tokens up to the end of the last block). */
void lopa_path_copy(lopa_path *dst, const lopa_path *src, const lopa_config *c);
/* Decoded ratio of a block: (len - masks_left) / len. */
float lopa_block_ratio(const lopa_block *b);
/* End of the to_cache segment (the rows committed by the next forward): the end of the last
 * to_cache / in_cache block, or P when there is none. */
int32_t lopa_seg_end(const lopa_path *p, const lopa_config *c);
/* Rows one candidate's window needs when the committed cache has length kv. */
int32_t lopa_window_rows(const lopa_path *p, const lopa_config *c, int32_t kv);
/* §2.3 steps 1-2 for one candidate: add at most one block (when #blocks < max_blocks, no EOS yet,
 * the last block's ratio ≥ τ_add — the prompt counts as ratio 1 — and the window stays within
 * max_rows, and c->hold is 0), then make block j+1 fully active when block j's ratio ≥ τ_act (block 0 follows the
 * prompt, ratio 1). Returns 1 while the path has an active block, 0 when it has none. */
int lopa_prepare(lopa_path *p, const lopa_config *c, int32_t kv);
/* A plain step's token (auto, logit-shift models: the prediction of the row before it, so one row
 * per token as in ar): t at the end of the path, merged into its last block, which must not be
 * active and becomes to_cache (a new block of one token when there is none). Sets eos when t is
 * EOS. Returns 0, or -1 when the path has an active block or no room is left (nothing changes). */
int lopa_append_plain(lopa_path *p, const lopa_config *c, int32_t t);
/* §1.5 retirement: active blocks with no masks become to_cache, left to right, stopping at the first
 * block still masked. Returns how many blocks it retired. */
int32_t lopa_retire(lopa_path *p);
/* After the forward that committed them: to_cache -> in_cache. */
void lopa_mark_cached(lopa_path *p);
/* True when the path can do nothing more: no active block and no block can ever be added. */
int lopa_done(const lopa_path *p, const lopa_config *c);
/* Number of masked positions in active blocks. */
int32_t lopa_masked(const lopa_path *p);

/* ---- confidence (§2.2) ---- */
/* p := softmax(logits) over [0, vocab) with the MASK id excluded (p[mask] = 0; §8.1). */
void lopa_probs(const float *logits, int32_t vocab, int32_t mask_id, float *p);
/* Ranking score of token under p (prob: p[token]; margin: top1 - top2; neg_entropy:
 * Σ p log(p + 1e-10)). */
float lopa_conf(const float *p, int32_t vocab, int32_t token, int32_t strategy);
/* Lowest index of the largest p (the greedy token). */
int32_t lopa_argmax(const float *p, int32_t n);

/* ---- fills, scores, selection (§2.3 step 5, §3.2 steps 5-10) ----
 * tok_at / prob_at / conf_at are indexed by position - P and are read at the masked positions of
 * active blocks only. */
/* Fill every masked position of an active block with prob > τ_conf; a fully active block that would
 * fill nothing fills its highest-conf position instead (lowest position on ties). Sets eos when an
 * EOS is filled. Returns the number of fills. */
int32_t lopa_fill(lopa_path *p, const lopa_config *c, const int32_t *tok_at, const float *prob_at,
                  const float *conf_at);
/* §3.2 step 5: mean conf over the masked positions of active blocks (1 when there is none), blended
 * with the path's creation_conf by c->alpha (REF selection_conf_alpha; 0 = the paper's score). */
float lopa_branch_score(const lopa_path *p, const lopa_config *c, const float *conf_at);
/* §3.2 step 6: argmax of scores[0..n) (the anchor is the last), earliest on exact ties; the anchor
 * when force_anchor. */
int32_t lopa_pick_winner(const float *scores, int32_t n, int force_anchor);
/* Up to k masked positions of w's active blocks with the highest conf_at (ties: lower position),
 * in descending order, into pos[]. Returns how many. */
int32_t lopa_top_positions(const lopa_path *w, const lopa_config *c, const float *conf_at, int32_t k, int32_t *pos);
/* §3.2 step 10: out[j] := w with position pos[j] filled by tok_at (j < m), never retiring a block;
 * each out[j] differs from w in exactly that position. */
void lopa_spawn(const lopa_path *w, const lopa_config *c, const int32_t *pos, int32_t m, const int32_t *tok_at,
                const float *conf_at, lopa_path *const *out);

/* ---- row layout of one round (§3.4) ---- */
typedef struct lopa_row {
  int32_t token, pos;
  int32_t cand;  /* candidate index, -1 for a row shared by every candidate */
  int32_t block; /* generated block index, -1 for a prompt row */
  int32_t logits;
} lopa_row;

typedef struct lopa_layout {
  int32_t n_rows, kv, seg_end; /* committed length C; the to_cache segment is [kv, seg_end) */
  int32_t n_cand;
  int32_t shared;              /* the segment's rows are shared (block-causal: identical K/V in every branch) */
  int32_t shared_base;
  int32_t cand_base[LOPA_MAX_CAND], cand_rows[LOPA_MAX_CAND];
  lopa_row *rows;              /* capacity max_rows */
} lopa_layout;

/* Lay out one forward for candidates cands[0..n) over committed length kv (prompt = the request's
 * prompt tokens). Per candidate: the to_cache segment rows (once, shared, in block-causal mode),
 * then the rows of its active blocks; logits on the rows whose output some masked position reads
 * (row of p - shift) and on the segment's last row (the next last_logit, §1.3). Returns n_rows,
 * or -1 when more than c->max_rows rows would be needed. */
int32_t lopa_layout_build(lopa_layout *L, lopa_path *const *cands, int32_t n, const lopa_config *c, int32_t kv,
                          const int32_t *prompt);
/* The row holding position pos for candidate cand, -1 if none. */
int32_t lopa_layout_row(const lopa_layout *L, int32_t cand, int32_t pos);
/* Whether row i sees row j (i != j): only rows of its own candidate and shared rows (isolation);
 * a prompt row sees earlier prompt rows (causal); a generated row of block b sees rows of blocks
 * ≤ b and prompt rows (block-causal), or every row of its candidate (full window). */
int lopa_layout_sees(const lopa_layout *L, const lopa_config *c, int32_t i, int32_t j);

#ifdef __cplusplus
}
#endif

#endif /* SPECD_PLUGINS_LOPA_LOGIC_H */
