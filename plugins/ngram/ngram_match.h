/* Prompt-lookup matching for the ngram decoder: where did the sequence's current suffix occur
 * before, and what followed it. Plain C11, no allocation, no host calls; unit-tested by
 * tests/test_ngram_match.cpp. */
#ifndef SPECD_PLUGINS_NGRAM_MATCH_H
#define SPECD_PLUGINS_NGRAM_MATCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Propose a draft continuing ctx[0..len).
 *
 * Picks the largest n in [ngram_min, ngram_max] for which the suffix ctx[len-n .. len) occurs
 * earlier, i.e. at some start j < len - n (occurrences may overlap the suffix; the suffix itself
 * never counts), and of those occurrences the most recent (largest j). The draft is what followed
 * it: draft[i] = ctx[j + n + i]. Where that runs past the end of ctx the draft continues from
 * itself (draft[i] = draft[j + n + i - len]), so a text repeating with period p drafts the
 * repetition rather than stopping after p tokens. So a match always gives max_draft tokens.
 * Returns the number written into draft[0..max_draft): max_draft on a match; 0 when no n-gram
 * matches, when max_draft <= 0, or when ngram_min < 1 or ngram_min > ngram_max.
 *
 * Cost: one backward scan over ctx that compares at most ngram_max tokens per position holding
 * the last token, stopping at the first occurrence of the full ngram_max-gram: O(len * ngram_max)
 * comparisons in the worst case, about len for typical text (a few microseconds at 4k tokens). */
int32_t ngram_find_draft(const int32_t *ctx, int32_t len, int32_t ngram_min, int32_t ngram_max, int32_t max_draft,
                         int32_t *draft);

#ifdef __cplusplus
}
#endif

#endif /* SPECD_PLUGINS_NGRAM_MATCH_H */
