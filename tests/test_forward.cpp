// The forward primitive (ARCHITECTURE.md §3): causal rows, trees, isolation, commit semantics, errors.
#include "tests/engine_fixture.h"

#include "tests/alloc_counter.h"
#include "tests/arch_models.h"

#include "kernels/cpu/matmul.h"

#include <cstring>


using namespace specd;
using namespace specd::test;
using engine::ROW_WANT_LOGITS;

namespace {
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
constexpr float kTol = 2e-5f;
}  // namespace

TEST_CASE("k causal rows + commit equal k one-row calls, in logits and in KV") {
  EngineFixture a, b;
  const auto sa = a.new_seq(), sb = b.new_seq();
  a.batch.clear();
  std::vector<int32_t> rows;
  for (size_t i = 0; i < kPrompt.size(); ++i)
    rows.push_back(a.batch.add_causal(sa, kPrompt[i], static_cast<int32_t>(i), ROW_WANT_LOGITS));
  REQUIRE(a.fwd.run(a.batch).has_value());
  std::vector<std::vector<float>> batched;
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    auto l = a.fwd.logits(static_cast<int32_t>(i));
    batched.emplace_back(l.begin(), l.end());
  }
  REQUIRE(a.fwd.commit(sa, rows).has_value());
  auto seq = b.step_by_step(sb, kPrompt);
  for (size_t i = 0; i < kPrompt.size(); ++i) CHECK(max_abs_diff(batched[i], seq[i]) < kTol);
  const auto& c = a.model.config();
  REQUIRE(a.kv.length(sa) == b.kv.length(sb));
  std::vector<float> ka(static_cast<size_t>(c.kv_dim())), va(ka), kb(ka), vb(ka);
  for (int32_t l = 0; l < c.n_layers; ++l)
    for (int32_t p = 0; p < a.kv.length(sa); ++p) {
      REQUIRE(a.fwd.read_kv(sa, l, p, ka.data(), va.data()).has_value());
      REQUIRE(b.fwd.read_kv(sb, l, p, kb.data(), vb.data()).has_value());
      CHECK(max_abs_diff(ka, kb) < kTol);
      CHECK(max_abs_diff(va, vb) < kTol);
    }
}

TEST_CASE("a two-branch tree in one call gives each branch the logits of its own sequential run") {
  EngineFixture f;
  const auto s = f.new_seq();
  f.prefill(s, {1, 403, 407});
  const int32_t P = f.kv.length(s);
  const std::vector<int32_t> A = {261, 378, 432}, B = {385, 328, 266};
  f.batch.clear();
  int32_t prev = -1;
  std::vector<int32_t> ra, rb;
  for (size_t i = 0; i < A.size(); ++i) {
    const int32_t r = f.batch.add(s, A[i], P + static_cast<int32_t>(i), ROW_WANT_LOGITS);
    for (int32_t j : ra) f.batch.see(r, j);
    ra.push_back(r);
    prev = r;
  }
  (void)prev;
  for (size_t i = 0; i < B.size(); ++i) {
    const int32_t r = f.batch.add(s, B[i], P + static_cast<int32_t>(i), ROW_WANT_LOGITS);
    for (int32_t j : rb) f.batch.see(r, j);
    rb.push_back(r);
  }
  REQUIRE(f.fwd.run(f.batch).has_value());
  std::vector<std::vector<float>> tree;
  for (int32_t i = 0; i < f.batch.size(); ++i) {
    auto l = f.fwd.logits(f.batch.row(i).out_index);
    tree.emplace_back(l.begin(), l.end());
  }
  for (const auto* branch : {&A, &B}) {
    EngineFixture g;
    const auto t = g.new_seq();
    g.prefill(t, {1, 403, 407});
    auto seq = g.step_by_step(t, *branch);
    const size_t off = branch == &A ? 0 : A.size();
    for (size_t i = 0; i < branch->size(); ++i) CHECK(max_abs_diff(tree[off + i], seq[i]) < kTol);
  }
}

TEST_CASE("rows of two sequences in one call do not affect each other") {
  EngineFixture f;
  const auto s0 = f.new_seq(), s1 = f.new_seq();
  f.prefill(s0, {1, 403, 407, 261});
  f.prefill(s1, {1, 385, 328});
  f.batch.clear();
  const int32_t a0 = f.batch.add_causal(s0, 378, 4, ROW_WANT_LOGITS);
  const int32_t b0 = f.batch.add_causal(s1, 432, 3, ROW_WANT_LOGITS);
  const int32_t a1 = f.batch.add_causal(s0, 432, 5, ROW_WANT_LOGITS);
  CHECK_FALSE(f.batch.visible(b0, a0));
  CHECK(f.batch.visible(a1, a0));
  REQUIRE(f.fwd.run(f.batch).has_value());
  auto la1 = f.fwd.logits(f.batch.row(a1).out_index);
  auto lb0 = f.fwd.logits(f.batch.row(b0).out_index);
  std::vector<float> ga1(la1.begin(), la1.end()), gb0(lb0.begin(), lb0.end());

  EngineFixture g;
  const auto t0 = g.new_seq(), t1 = g.new_seq();
  g.prefill(t0, {1, 403, 407, 261});
  g.prefill(t1, {1, 385, 328});
  auto solo_a = g.step_by_step(t0, {378, 432});
  auto solo_b = g.step_by_step(t1, {432});
  CHECK(max_abs_diff(ga1, solo_a[1]) < kTol);
  CHECK(max_abs_diff(gb0, solo_b[0]) < kTol);
}

TEST_CASE("committing a subset then continuing equals having run only that subset") {
  EngineFixture f, g;
  const auto s = f.new_seq(), t = g.new_seq();
  f.prefill(s, {1, 403});
  g.prefill(t, {1, 403});
  // Rows: 407@2, 999-branch 385@2 (sibling), 261@3 child of 407. Commit 407 and 261 only.
  f.batch.clear();
  const int32_t r0 = f.batch.add(s, 407, 2, 0);
  const int32_t r1 = f.batch.add(s, 385, 2, 0);
  const int32_t r2 = f.batch.add(s, 261, 3, 0);
  f.batch.see(r2, r0);
  (void)r1;
  REQUIRE(f.fwd.run(f.batch).has_value());
  const int32_t keep[] = {r0, r2};
  REQUIRE(f.fwd.commit(s, keep).has_value());
  CHECK(f.kv.length(s) == 4);
  auto after_f = f.prefill(s, {378});
  g.prefill(t, {407, 261});
  auto after_g = g.prefill(t, {378});
  CHECK(max_abs_diff(after_f, after_g) < kTol);
}

TEST_CASE("nothing uncommitted survives a call") {
  EngineFixture f, g;
  const auto s = f.new_seq(), t = g.new_seq();
  f.prefill(s, {1, 403, 407});
  g.prefill(t, {1, 403, 407});
  f.batch.clear();
  for (int32_t i = 0; i < 5; ++i) f.batch.add_causal(s, 300 + i, 3 + i, ROW_WANT_LOGITS);
  REQUIRE(f.fwd.run(f.batch).has_value());
  CHECK(f.kv.length(s) == 3);
  CHECK(max_abs_diff(f.prefill(s, {261}), g.prefill(t, {261})) < kTol);
}

TEST_CASE("hidden rows are the final-norm state whose head product gives the logits") {
  EngineFixture f;
  const auto s = f.new_seq();
  f.batch.clear();
  f.batch.add_causal(s, 1, 0, ROW_WANT_LOGITS | engine::ROW_WANT_HIDDEN);
  REQUIRE(f.fwd.run(f.batch).has_value());
  auto h = f.fwd.hidden(0);
  auto l = f.fwd.logits(0);
  const auto& head = f.model.output();
  std::vector<float> row(static_cast<size_t>(head.cols));
  for (int32_t v : {0, 403, 385, 511}) {
    kernels::weight_row_to_f32(head, v, row.data());
    double d = 0;
    for (size_t k = 0; k < row.size(); ++k) d += double(row[k]) * h[k];
    CHECK(std::fabs(d - l[static_cast<size_t>(v)]) < 1e-4);
  }
}

TEST_CASE("bad rows and commits are refused with named errors and change nothing") {
  EngineFixture f;
  const auto s = f.new_seq(), other = f.new_seq();
  f.prefill(s, {1, 403});
  auto expect = [&](int code, const char* phrase) {
    auto r = f.fwd.run(f.batch);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(phrase) != std::string::npos, r.error().message);
  };
  f.batch.clear();
  f.batch.add(s, 512, 2, ROW_WANT_LOGITS);
  expect(SPECD_E_BAD_TOKEN, "out of range");
  f.batch.clear();
  f.batch.add(s, -1, 2, ROW_WANT_LOGITS);
  expect(SPECD_E_BAD_TOKEN, "out of range");
  f.batch.clear();
  f.batch.add(57, 10, 2, ROW_WANT_LOGITS);
  expect(SPECD_E_INVALID_ARG, "unknown sequence");
  f.batch.clear();
  f.batch.add(s, 10, f.model.config().ctx_len, ROW_WANT_LOGITS);
  expect(SPECD_E_CONTEXT, "context length");
  f.batch.clear();
  const int32_t a = f.batch.add(s, 10, 2, 0);
  const int32_t b = f.batch.add(other, 10, 0, 0);
  f.batch.see(b, a);
  expect(SPECD_E_INVALID_ARG, "another sequence");
  CHECK(f.kv.length(s) == 2);

  f.batch.clear();
  const int32_t r0 = f.batch.add_causal(s, 407, 2, 0);
  const int32_t r1 = f.batch.add_causal(s, 261, 3, 0);
  const int32_t o0 = f.batch.add(other, 1, 0, 0);
  REQUIRE(f.fwd.run(f.batch).has_value());
  const int32_t gap[] = {r1};
  auto e1 = f.fwd.commit(s, gap);
  REQUIRE_FALSE(e1.has_value());
  CHECK(e1.error().message.find("position") != std::string::npos);
  const int32_t wrong_seq[] = {o0};
  CHECK_FALSE(f.fwd.commit(s, wrong_seq).has_value());
  const int32_t out_of_range[] = {99};
  CHECK_FALSE(f.fwd.commit(s, out_of_range).has_value());
  CHECK(f.kv.length(s) == 2);
  const int32_t ok[] = {r0, r1};
  CHECK(f.fwd.commit(s, ok).has_value());
  CHECK(f.kv.length(s) == 4);
}

TEST_CASE("a full KV arena gives kv cache full, atomically") {
  engine::KvCacheOptions o;
  o.block_tokens = 4;
  o.max_seqs = 2;
  const auto& m = stories_model();
  o.max_bytes = 2 * static_cast<size_t>(m.config().n_layers) * 2 * 4 * static_cast<size_t>(m.config().kv_dim()) * 4;
  EngineFixture f(o);
  REQUIRE(f.kv.n_blocks() == 2);
  const auto s = f.new_seq();
  f.prefill(s, {1, 403, 407, 261, 378, 432});
  f.batch.clear();
  std::vector<int32_t> rows;
  for (int32_t i = 0; i < 3; ++i) rows.push_back(f.batch.add_causal(s, 300, 6 + i, 0));
  REQUIRE(f.fwd.run(f.batch).has_value());
  auto r = f.fwd.commit(s, rows);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_KV_FULL);
  CHECK(r.error().message.find("kv cache full") != std::string::npos);
  CHECK(f.kv.length(s) == 6);
}

TEST_CASE("steady-state decode steps allocate nothing") {
  EngineFixture f;
  const auto s = f.new_seq();
  f.prefill(s, {1, 403, 407});
  int32_t row = 0;
  auto step = [&](int32_t tok) {
    f.batch.clear();
    row = f.batch.add(s, tok, f.kv.length(s), ROW_WANT_LOGITS);
    REQUIRE(f.fwd.run(f.batch).has_value());
    REQUIRE(f.fwd.commit(s, std::span<const int32_t>(&row, 1)).has_value());
  };
  for (int32_t i = 0; i < 40; ++i) step(300 + i);  // warm-up: block tables, scratch, per-worker buffers
  const long before = allocation_count();
  for (int32_t i = 0; i < 50; ++i) step(261 + i);
  CHECK(allocation_count() - before == 0);
}

TEST_CASE("a token's logits and K/V are the same bits whether earlier tokens were committed one by one or are rows of the call") {
  // What makes a verifying decoder lossless: ar decodes one row per call against the cache, a
  // verifier checks k rows in one call. Any difference in bits (e.g. a fused multiply-add in one
  // path and not the other) can flip a near-tie argmax.
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 285, 400, 262};
  const std::vector<int32_t> more = {300, 301, 302, 303, 304, 305, 306};
  EngineFixture one;
  const auto s1 = one.new_seq();
  one.prefill(s1, prompt);
  std::vector<float> last_one;
  for (int32_t t : more) last_one = one.prefill(s1, {t});
  for (int32_t chunk : {2, 3, 7}) {
    CAPTURE(chunk);
    EngineFixture many;
    const auto s2 = many.new_seq();
    many.prefill(s2, prompt);
    std::vector<float> last_many;
    for (size_t at = 0; at < more.size(); at += static_cast<size_t>(chunk))
      last_many = many.prefill(s2, std::vector<int32_t>(more.begin() + static_cast<std::ptrdiff_t>(at),
                                                        more.begin() + static_cast<std::ptrdiff_t>(std::min(more.size(), at + static_cast<size_t>(chunk)))));
    CHECK(std::memcmp(last_one.data(), last_many.data(), last_one.size() * sizeof(float)) == 0);
    const auto& c = one.model.config();
    std::vector<float> k1(static_cast<size_t>(c.kv_dim())), v1(k1), k2(k1), v2(k1);
    int bad = 0;
    for (int32_t l = 0; l < c.n_layers; ++l)
      for (int32_t p = 0; p < one.kv.length(s1); ++p) {
        REQUIRE(one.fwd.read_kv(s1, l, p, k1.data(), v1.data()).has_value());
        REQUIRE(many.fwd.read_kv(s2, l, p, k2.data(), v2.data()).has_value());
        bad += k1 != k2 || v1 != v2;
      }
    CHECK(bad == 0);
  }
}

TEST_CASE("llama/qwen2/qwen3 models: a row's logits are the same bits one by one, in chunks, and beside another sequence's rows") {
  // The same rule as above on the issue-14 block options (rope_freqs, GQA, Q/K/V biases, per-head
  // Q/K norms, NEOX rope, head_dim != dim/heads): every new op must keep rows independent.
  const std::vector<int32_t> prompt = {791, 1176, 315, 264, 892, 11, 304};
  const std::vector<int32_t> more = {1070, 574, 264, 2697, 3363, 6832, 13};
  for (const ArchCase& c : kArchCases) {
    const std::string arch = c.arch;
    CAPTURE(arch);
    const engine::Model* m = arch_model(c);
    if (!m) continue;
    EngineFixture one(*m);
    const auto s1 = one.new_seq();
    one.prefill(s1, prompt);
    std::vector<std::vector<float>> want;
    for (int32_t t : more) want.push_back(one.prefill(s1, {t}));
    for (int32_t chunk : {3, 7}) {
      CAPTURE(chunk);
      EngineFixture many(*m);
      const auto s2 = many.new_seq(), other = many.new_seq();
      many.prefill(s2, prompt);
      many.prefill(other, {1000, 2000, 3000});
      for (size_t at = 0; at < more.size(); at += static_cast<size_t>(chunk)) {
        many.batch.clear();
        std::vector<int32_t> rows;
        const size_t end = std::min(more.size(), at + static_cast<size_t>(chunk));
        for (size_t i = at; i < end; ++i)
          rows.push_back(many.batch.add_causal(s2, more[i], static_cast<int32_t>(prompt.size() + i), ROW_WANT_LOGITS));
        many.batch.add_causal(other, 4000, many.kv.length(other), ROW_WANT_LOGITS);  // a neighbour, not committed
        REQUIRE(many.fwd.run(many.batch).has_value());
        for (size_t i = at; i < end; ++i) {
          const auto l = many.fwd.logits(static_cast<int32_t>(i - at));
          CHECK(std::memcmp(l.data(), want[i].data(), l.size() * sizeof(float)) == 0);
        }
        REQUIRE(many.fwd.commit(s2, rows).has_value());
      }
    }
  }
}
