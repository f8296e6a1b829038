#include "redrafter_tree.h"

size_t rd_tree_ints(int32_t W, int32_t L) {
  const size_t wl = (size_t)W * (size_t)L;
  return 3 * wl + 2 * (size_t)W + 4 * (1 + (size_t)W * (size_t)(L - 1));
}

void rd_tree_init(rd_tree *t, int32_t W, int32_t L, int32_t *storage) {
  const size_t wl = (size_t)W * (size_t)L, nmax = 1 + (size_t)W * (size_t)(L - 1);
  t->W = W;
  t->L = L;
  t->n = 0;
  t->tree = storage;
  t->unpacker = t->tree + wl;
  t->div = t->unpacker + wl;
  t->start = t->div + W;
  t->tok = t->start + W;
  t->depth = t->tok + nmax;
  t->parent = t->depth + nmax;
  t->beam_pos = t->parent + nmax;
}

int32_t rd_tree_pack(rd_tree *t, const int32_t *beams) {
  const int32_t W = t->W, L = t->L;
  /* tree[i][j]: the first beam k whose prefix 0..j equals beam i's. Prefixes grow with j, so the
   * candidates at depth j are those that still matched at depth j-1 (k = tree[i][j-1] onwards). */
  for (int32_t i = 0; i < W; ++i) {
    const int32_t *bi = beams + (size_t)i * L;
    int32_t k = 0;
    for (int32_t j = 0; j < L; ++j) {
      for (;; ++k) {
        const int32_t *bk = beams + (size_t)k * L;
        int32_t same = 1;
        for (int32_t jj = 0; jj <= j && same; ++jj) same = bk[jj] == bi[jj];
        if (same) break; /* terminates: k = i matches itself */
      }
      t->tree[(size_t)i * L + j] = k;
    }
  }
  int32_t n = 0;
  for (int32_t i = 0; i < W; ++i) {
    int32_t d = L;
    for (int32_t j = 0; j < L; ++j)
      if (t->tree[(size_t)i * L + j] == i) {
        d = j;
        break;
      }
    t->div[i] = d;
    t->start[i] = n;
    for (int32_t j = d; j < L; ++j, ++n) {
      t->tok[n] = beams[(size_t)i * L + j];
      t->depth[n] = j;
      t->beam_pos[n] = i * L + j;
    }
  }
  t->n = n;
  for (int32_t i = 0; i < W; ++i)
    for (int32_t j = 0; j < L; ++j) {
      const int32_t k = t->tree[(size_t)i * L + j];
      const int32_t p = t->start[k] + (j - t->div[k]);
      t->unpacker[(size_t)i * L + j] = p;
      t->parent[p] = j == 0 ? -1 : t->unpacker[(size_t)i * L + j - 1];
    }
  return n;
}

int32_t rd_tree_child(const rd_tree *t, int32_t u, int32_t tok) {
  for (int32_t q = u + 1; q < t->n; ++q)
    if (t->parent[q] == u && t->tok[q] == tok) return q;
  return -1;
}

int32_t rd_tree_prune(rd_tree *t, const float *score, int32_t max_nodes, int32_t *scratch) {
  if (max_nodes < 1) max_nodes = 1;
  if (t->n <= max_nodes) return t->n;
  /* Rank nodes by (score desc, index asc) with an insertion sort (n <= 1 + W(L-1), small). */
  int32_t *order = scratch;
  for (int32_t p = 0; p < t->n; ++p) {
    int32_t at = p;
    while (at > 0 && (score[order[at - 1]] < score[p] || (score[order[at - 1]] == score[p] && order[at - 1] > p))) {
      order[at] = order[at - 1];
      --at;
    }
    order[at] = p;
  }
  /* Mark the kept ones (reusing order's tail as flags would alias; use the sign of beam_pos). */
  for (int32_t r = 0; r < max_nodes; ++r) t->beam_pos[order[r]] = -1 - t->beam_pos[order[r]];
  /* Compact in packed order; scratch becomes old index -> new index. */
  int32_t n = 0;
  for (int32_t p = 0; p < t->n; ++p) {
    if (t->beam_pos[p] >= 0) {
      scratch[p] = -1;
      continue;
    }
    scratch[p] = n;
    t->tok[n] = t->tok[p];
    t->depth[n] = t->depth[p];
    t->parent[n] = t->parent[p] < 0 ? -1 : scratch[t->parent[p]];
    t->beam_pos[n] = -1 - t->beam_pos[p];
    ++n;
  }
  t->n = n;
  return n;
}
