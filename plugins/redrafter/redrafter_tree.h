/* ReDrafter's dynamic tree (docs: methods/redrafter.md §4): W beams of length L that share their
 * first token (the root) are deduplicated into a prefix tree, packed beam-major then by depth.
 *
 * Pure functions over caller-owned arrays, so tests compile this file without a host. */
#ifndef SPECD_REDRAFTER_TREE_H
#define SPECD_REDRAFTER_TREE_H

#include <stddef.h>
#include <stdint.h>

typedef struct rd_tree {
  int32_t W, L;
  int32_t n;          /* packed nodes, 1 <= n <= 1 + W*(L-1) */
  int32_t *tree;      /* [W][L]: the first beam k <= i with the same prefix 0..j as beam i */
  int32_t *div;       /* [W]: divergence depth d_i (L for a duplicate of an earlier beam) */
  int32_t *start;     /* [W]: packed index of beam i's first new node */
  int32_t *tok;       /* [n]: token of each packed node */
  int32_t *depth;     /* [n]: depth (0 = root) */
  int32_t *parent;    /* [n]: packed index of the parent, -1 for the root */
  int32_t *beam_pos;  /* [n]: i*L + j of the beam position that introduced the node */
  int32_t *unpacker;  /* [W][L]: packed index of beam position (i, j) */
} rd_tree;

/* int32_t slots rd_tree_init needs for W beams of length L. */
size_t rd_tree_ints(int32_t W, int32_t L);
/* Point t's arrays into storage (rd_tree_ints(W, L) int32_t, owned by the caller). */
void rd_tree_init(rd_tree *t, int32_t W, int32_t L, int32_t *storage);
/* Pack beams[W][L] (beams[i][0] equal for every i) into t; returns t->n. */
int32_t rd_tree_pack(rd_tree *t, const int32_t *beams);
/* Keep the max_nodes nodes with the highest score[p] (a node's drafter log-probability along its
 * path: never above its parent's, so the kept set is a subtree; ties keep the lower index, i.e.
 * the parent first), renumbered in packed order. The root is always kept. scratch holds t->n
 * int32_t. Afterwards unpacker, tree, div and start describe the unpruned beams, not t. Returns t->n. */
int32_t rd_tree_prune(rd_tree *t, const float *score, int32_t max_nodes, int32_t *scratch);
/* The child of node u whose token is tok, or -1. Children have larger packed indices than u. */
int32_t rd_tree_child(const rd_tree *t, int32_t u, int32_t tok);

#endif
