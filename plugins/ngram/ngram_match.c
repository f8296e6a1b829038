/* Prompt-lookup matching: the most recent earlier occurrence of the longest matching suffix n-gram. */
#include "ngram_match.h"

/* One backward scan: at each earlier position e holding the last token, measure how long the
 * match ending at e is (capped at ngram_max). Scanning from the end, the first e reaching a length
 * is the most recent occurrence of that n-gram, so an earlier e replaces the best only when it
 * matches strictly longer, and ngram_max ends the scan. */
int32_t ngram_find_draft(const int32_t *ctx, int32_t len, int32_t ngram_min, int32_t ngram_max, int32_t max_draft,
                         int32_t *draft) {
  if (ctx == 0 || len < 2 || max_draft <= 0 || ngram_min < 1 || ngram_min > ngram_max) return 0;
  const int32_t last = len - 1;
  const int32_t want = ctx[last];
  int32_t best_len = 0;
  int32_t best_end = -1;
  for (int32_t e = last - 1; e >= 0; --e) {
    if (ctx[e] != want) continue;
    int32_t m = 1;
    while (m < ngram_max && m <= e && ctx[e - m] == ctx[last - m]) ++m;
    if (m > best_len) {
      best_len = m;
      best_end = e;
      if (m == ngram_max) break;
    }
  }
  if (best_len < ngram_min) return 0;
  /* The continuation starts at best_end + 1 <= last; past the end it reads the draft itself. */
  const int32_t start = best_end + 1;
  for (int32_t i = 0; i < max_draft; ++i) {
    const int32_t src = start + i;
    draft[i] = src < len ? ctx[src] : draft[src - len];
  }
  return max_draft;
}
