// The ngram decoder's prompt-lookup matcher (plugins/ngram/ngram_match.c), without a runtime.
#include "plugins/ngram/ngram_match.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace {
using Tokens = std::vector<int32_t>;

// The draft for ctx, or {} when there is none.
Tokens find(const Tokens& ctx, int32_t nmin, int32_t nmax, int32_t max_draft) {
  Tokens draft(static_cast<size_t>(max_draft > 0 ? max_draft : 0) + 1, -7);
  const int32_t m =
      ngram_find_draft(ctx.data(), static_cast<int32_t>(ctx.size()), nmin, nmax, max_draft, draft.data());
  REQUIRE(m >= 0);
  REQUIRE(m <= (max_draft > 0 ? max_draft : 0));
  CHECK(draft[static_cast<size_t>(m)] == -7);  // never writes past what it returns
  draft.resize(static_cast<size_t>(m));
  return draft;
}

// The definition, spelled out: for n from nmax down to nmin, the largest start j < len - n where
// ctx[j..j+n) equals the suffix; the draft continues from j + n through ctx and then itself.
Tokens find_naive(const Tokens& ctx, int32_t nmin, int32_t nmax, int32_t max_draft) {
  const auto len = static_cast<int32_t>(ctx.size());
  for (int32_t n = nmax; n >= nmin; --n) {
    for (int32_t j = len - n - 1; j >= 0; --j) {
      bool same = true;
      for (int32_t t = 0; t < n && same; ++t) same = ctx[j + t] == ctx[len - n + t];
      if (!same) continue;
      Tokens ext = ctx;
      for (int32_t i = 0; i < max_draft; ++i) ext.push_back(ext[j + n + i]);
      return Tokens(ext.begin() + len, ext.end());
    }
  }
  return {};
}
}  // namespace

TEST_CASE("the most recent earlier occurrence wins") {
  //               0  1  2  3  4  5  6  7  8  9
  const Tokens ctx{1, 2, 3, 9, 1, 2, 4, 5, 1, 2};
  CHECK(find(ctx, 1, 2, 3) == Tokens{4, 5, 1});
  CHECK(find(ctx, 1, 2, 1) == Tokens{4});
}

TEST_CASE("a longer n-gram is preferred to a more recent shorter one") {
  //               0  1  2  3  4  5  6  7  8  9
  const Tokens ctx{5, 1, 2, 7, 8, 2, 6, 5, 1, 2};
  CHECK(find(ctx, 1, 3, 2) == Tokens{7, 8});  // "5 1 2" at 0
  CHECK(find(ctx, 1, 2, 2) == Tokens{7, 8});  // "1 2" at 1 (the only earlier one)
  CHECK(find(ctx, 1, 1, 2) == Tokens{6, 5});  // "2" at 5, the most recent
}

TEST_CASE("no match gives no draft; ngram_min is respected") {
  CHECK(find(Tokens{1, 2, 3, 4, 5}, 1, 3, 4).empty());
  CHECK(find(Tokens{}, 1, 3, 4).empty());
  CHECK(find(Tokens{3}, 1, 3, 4).empty());
  const Tokens only_unigram{4, 8, 1, 2, 8};  // "8" recurs, "2 8" does not
  CHECK(find(only_unigram, 1, 3, 2) == Tokens{1, 2});
  CHECK(find(only_unigram, 2, 3, 2).empty());
  CHECK(find(only_unigram, 3, 1, 2).empty());  // ngram_min > ngram_max
  CHECK(find(only_unigram, 0, 3, 2).empty());  // ngram_min < 1
}

TEST_CASE("the draft is truncated to the limit") {
  const Tokens ctx{1, 2, 3, 4, 5, 6, 7, 8, 1};
  CHECK(find(ctx, 1, 3, 8) == Tokens{2, 3, 4, 5, 6, 7, 8, 1});
  CHECK(find(ctx, 1, 3, 3) == Tokens{2, 3, 4});
  CHECK(find(ctx, 1, 3, 1) == Tokens{2});
  CHECK(find(ctx, 1, 3, 0).empty());
  CHECK(find(ctx, 1, 3, -1).empty());
}

TEST_CASE("the suffix itself is never a match") {
  CHECK(find(Tokens{1, 2, 3}, 1, 3, 4).empty());
  CHECK(find(Tokens{9, 1, 2, 3}, 3, 3, 4).empty());
  // "7 7" as a bigram would need two 7s before the last one; only the unigram "7" at 0 matches.
  CHECK(find(Tokens{7, 7}, 1, 2, 3) == Tokens{7, 7, 7});
  CHECK(find(Tokens{7, 7}, 2, 2, 3).empty());
}

TEST_CASE("repetitive text drafts the repetition") {
  // Period 3: the most recent "3 1 2" (start 2) is followed by "3 1 2", the end of the context;
  // the draft goes on through itself rather than stopping there.
  const Tokens cyc{1, 2, 3, 1, 2, 3, 1, 2};
  CHECK(find(cyc, 1, 3, 7) == Tokens{3, 1, 2, 3, 1, 2, 3});
  CHECK(find(cyc, 1, 2, 2) == Tokens{3, 1});
  CHECK(find(Tokens(50, 4), 1, 3, 5) == Tokens(5, 4));
  // An ABAB tail after unrelated text.
  const Tokens tail{9, 8, 7, 5, 6, 5, 6, 5};
  CHECK(find(tail, 1, 3, 4) == Tokens{6, 5, 6, 5});
}

TEST_CASE("matches the naive definition on random text") {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 3000; ++trial) {
    const int32_t alphabet = 2 + static_cast<int32_t>(rng() % 6);
    const auto len = static_cast<size_t>(rng() % 60);
    Tokens ctx(len);
    for (auto& t : ctx) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(alphabet));
    const int32_t nmax = 1 + static_cast<int32_t>(rng() % 8);
    const int32_t nmin = 1 + static_cast<int32_t>(rng() % static_cast<uint32_t>(nmax));
    const int32_t k = static_cast<int32_t>(rng() % 10);
    INFO("trial " << trial);
    REQUIRE(find(ctx, nmin, nmax, k) == find_naive(ctx, nmin, nmax, k));
  }
}

TEST_CASE("a few thousand tokens of context") {
  std::mt19937 rng(7);
  Tokens ctx(4096);
  for (auto& t : ctx) t = static_cast<int32_t>(rng() % 512);
  // Plant "11 22 33 44 55" early and end the context with "11 22 33".
  const Tokens plant{11, 22, 33, 44, 55};
  std::copy(plant.begin(), plant.end(), ctx.begin() + 100);
  ctx.insert(ctx.end(), {11, 22, 33});
  const Tokens d = find(ctx, 1, 3, 2);
  CHECK(d == find_naive(ctx, 1, 3, 2));
  CHECK(find(ctx, 3, 3, 2) == Tokens{44, 55});
}
