#include "redrafter_beam.h"

#include <math.h>

void rd_truncated_logq(const float *vals, int32_t K, float *logq) {
  float mx = vals[0];
  for (int32_t i = 1; i < K; ++i)
    if (vals[i] > mx) mx = vals[i];
  double sum = 0.0;
  for (int32_t i = 0; i < K; ++i) sum += exp((double)(vals[i] - mx));
  const float lse = mx + (float)log(sum);
  for (int32_t i = 0; i < K; ++i) logq[i] = vals[i] - lse;
}

int32_t rd_beam_select(int32_t alive, int32_t K, int32_t W, const float *score, const int32_t *ids,
                       const float *logq, int32_t *parent, int32_t *token, int32_t *rank, float *score_out) {
  /* Each beam's offers are sorted, so the best remaining candidate of beam b is its head[b]-th:
   * a W-way merge of `alive` sorted lists. */
  int32_t head[RD_MAX_BEAMS] = {0};
  int32_t chosen = 0;
  for (; chosen < W; ++chosen) {
    int32_t best = -1;
    float best_score = 0.0f;
    for (int32_t b = 0; b < alive; ++b) {
      if (head[b] >= K) continue;
      const float s = score[b] + logq[(long)b * K + head[b]];
      if (best < 0 || s > best_score) {
        best = b;
        best_score = s;
      }
    }
    if (best < 0) break;
    parent[chosen] = best;
    rank[chosen] = head[best];
    token[chosen] = ids[(long)best * K + head[best]];
    score_out[chosen] = best_score;
    head[best]++;
  }
  return chosen;
}
