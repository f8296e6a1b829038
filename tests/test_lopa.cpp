// The lopa decoder (plugins/lopa/): its pure block logic, and D2F / LoPA runs on stories260K with an
// untrained MASK token appended by specd-add-mask (docs/methods/lopa.md §8's invariants).
extern "C" {
#include "plugins/lopa/lopa_auto.h"
}
#include "plugins/lopa/lopa_logic.h"
#include "tests/alloc_counter.h"
#include "tests/runtime_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

using namespace specd;
using namespace specd::test;

namespace {

constexpr int32_t kMask = 512, kEos = 2, kVocab = 513;

// ---------------------------------------------------------------------------------------------
// Pure-logic helpers: a path with its own storage.
struct Path {
  std::vector<lopa_block> blocks;
  std::vector<int32_t> tok;
  lopa_path p{};
  explicit Path(const lopa_config& c) : blocks(static_cast<size_t>(c.max_blocks)), tok(static_cast<size_t>(c.gen_cap)) {
    p.blocks = blocks.data();
    p.tok = tok.data();
    lopa_path_reset(&p);
  }
};

lopa_config config(int32_t P = 4, int32_t gen = 32, int32_t bs = 8) {
  lopa_config c{};
  c.bs = bs;
  c.prompt_len = P;
  c.gen_cap = gen;
  c.max_blocks = (gen + bs - 1) / bs;
  c.mask_id = kMask;
  c.eos_id = kEos;
  c.vocab = kVocab;
  c.tau_add = 0.1f;
  c.tau_act = 0.95f;
  c.tau_conf = 0.9f;
  c.strategy = LOPA_CONF_PROB;
  c.full_window = 0;
  c.shift = 1;
  c.max_rows = 1024;
  return c;
}

// Fill position pos (absolute) of a path by hand, keeping masks_left right.
void set_tok(lopa_path& p, const lopa_config& c, int32_t pos, int32_t t) {
  p.tok[pos - c.prompt_len] = t;
  for (int32_t j = 0; j < p.n_blocks; ++j)
    if (pos >= p.blocks[j].start && pos < p.blocks[j].start + p.blocks[j].len) p.blocks[j].masks_left--;
}

}  // namespace

TEST_CASE("lopa logic: block add, activation and retirement (§1.5, §2.3 steps 1-2)") {
  auto c = config(4, 20, 8);  // blocks of 8, 8, 4
  Path a(c);
  CHECK(lopa_prepare(&a.p, &c, 0) == 1);  // the prompt's ratio 1 adds block 0, fully active
  REQUIRE(a.p.n_blocks == 1);
  CHECK(a.p.blocks[0].start == 4);
  CHECK(a.p.blocks[0].len == 8);
  CHECK(a.p.blocks[0].fully_active == 1);
  CHECK(a.tok[0] == kMask);
  lopa_prepare(&a.p, &c, 0);  // block 0's ratio 0 < τ_add: nothing added
  CHECK(a.p.n_blocks == 1);
  set_tok(a.p, c, 4, 7);      // ratio 1/8 = 0.125 ≥ 0.1: one block added, semi-active
  lopa_prepare(&a.p, &c, 0);
  REQUIRE(a.p.n_blocks == 2);
  CHECK(a.p.blocks[1].fully_active == 0);
  CHECK(lopa_window_rows(&a.p, &c, 0) == 4 + 16);
  for (int32_t q = 5; q < 12; ++q) set_tok(a.p, c, q, 7);  // block 0 complete: block 1 becomes fully active
  lopa_prepare(&a.p, &c, 0);
  CHECK(a.p.blocks[1].fully_active == 1);
  CHECK(a.p.n_blocks == 2);  // block 1's ratio 0 < τ_add
  set_tok(a.p, c, 12, 7);
  lopa_prepare(&a.p, &c, 0);
  REQUIRE(a.p.n_blocks == 3);
  CHECK(a.p.blocks[2].len == 4);  // the last block is what gen_cap leaves
  lopa_prepare(&a.p, &c, 0);
  CHECK(a.p.n_blocks == 3);  // max_blocks
  // Retirement is strictly left to right: a complete block 2 behind an incomplete block 1 stays active.
  for (int32_t q = 20; q < 24; ++q) set_tok(a.p, c, q, 7);
  CHECK(lopa_retire(&a.p) == 1);
  CHECK(a.p.blocks[0].state == LOPA_TO_CACHE);
  CHECK(a.p.blocks[2].state == LOPA_ACTIVE);
  CHECK(lopa_seg_end(&a.p, &c) == 12);
  CHECK(lopa_masked(&a.p) == 7);
  lopa_mark_cached(&a.p);
  CHECK(a.p.blocks[0].state == LOPA_IN_CACHE);
  for (int32_t q = 13; q < 20; ++q) set_tok(a.p, c, q, 7);
  CHECK(lopa_retire(&a.p) == 2);
  CHECK(lopa_done(&a.p, &c));
  // EOS stops block addition; the window limit too.
  Path e(c);
  lopa_prepare(&e.p, &c, 0);
  e.p.eos = 1;
  set_tok(e.p, c, 4, kEos);
  lopa_prepare(&e.p, &c, 0);
  CHECK(e.p.n_blocks == 1);
  auto small = config(4, 32, 8);
  small.max_rows = 4 + 8 + 7;
  Path s(small);
  lopa_prepare(&s.p, &small, 0);
  set_tok(s.p, small, 4, 7);
  lopa_prepare(&s.p, &small, 0);
  CHECK(s.p.n_blocks == 1);  // a second block would need 20 rows
}

TEST_CASE("lopa logic: threshold fills, forced progress and EOS (§2.3 step 5, §8.6)") {
  auto c = config(2, 16, 8);
  c.tau_act = 1.0f;
  Path a(c);
  lopa_prepare(&a.p, &c, 0);
  set_tok(a.p, c, 2, 9);
  lopa_prepare(&a.p, &c, 0);  // block 1 semi-active (τ_act 1 not reached)
  REQUIRE(a.p.n_blocks == 2);
  REQUIRE(a.p.blocks[1].fully_active == 0);
  std::vector<int32_t> tok(16, 0);
  std::vector<float> prob(16, 0.5f), conf(16, 0.5f);
  for (int i = 0; i < 16; ++i) tok[static_cast<size_t>(i)] = 100 + i;
  conf[5] = 0.7f;
  conf[6] = 0.7f;   // tie: the lower position wins
  prob[12] = 0.95f; // the semi-active block's only confident position
  tok[12] = kEos;
  CHECK(lopa_fill(&a.p, &c, tok.data(), prob.data(), conf.data()) == 2);
  CHECK(a.tok[5] == 105);  // block 0: nothing above τ, forced argmax-conf (lowest position)
  CHECK(a.tok[6] == kMask);
  CHECK(a.tok[12] == kEos);  // block 1: only prob > τ_conf
  CHECK(a.tok[13] == kMask);
  CHECK(a.p.eos == 1);
  CHECK(a.p.blocks[0].masks_left == 6);
  CHECK(a.p.blocks[1].masks_left == 7);
  // τ_conf = 0 fills everything; τ_conf > 1 fills one per fully active block.
  c.tau_conf = 0.0f;
  Path z(c);
  lopa_prepare(&z.p, &c, 0);
  CHECK(lopa_fill(&z.p, &c, tok.data(), prob.data(), conf.data()) == 8);
  c.tau_conf = 1.5f;
  Path o(c);
  lopa_prepare(&o.p, &c, 0);
  std::fill(prob.begin(), prob.end(), 1.0f);
  CHECK(lopa_fill(&o.p, &c, tok.data(), prob.data(), conf.data()) == 1);
  // Strict >: a probability equal to τ_conf is not enough.
  c.tau_conf = 0.5f;
  Path h(c);
  lopa_prepare(&h.p, &c, 0);
  h.p.blocks[0].fully_active = 0;
  std::fill(prob.begin(), prob.end(), 0.5f);
  CHECK(lopa_fill(&h.p, &c, tok.data(), prob.data(), conf.data()) == 0);
}

TEST_CASE("lopa logic: confidence strategies and the MASK exclusion (§2.2, §8.1)") {
  std::vector<float> logits(kVocab, 0.0f);
  logits[kMask] = 50.0f;  // the MASK would win; it is excluded
  logits[3] = std::log(6.0f);
  logits[4] = std::log(3.0f);
  std::vector<float> p(kVocab);
  lopa_probs(logits.data(), kVocab, kMask, p.data());
  CHECK(p[kMask] == 0.0f);
  const float z = 6.0f + 3.0f + 510.0f;
  CHECK(p[3] == doctest::Approx(6.0f / z));
  CHECK(lopa_argmax(p.data(), kVocab) == 3);
  CHECK(lopa_conf(p.data(), kVocab, 3, LOPA_CONF_PROB) == doctest::Approx(6.0f / z));
  CHECK(lopa_conf(p.data(), kVocab, 3, LOPA_CONF_MARGIN) == doctest::Approx(3.0f / z));
  double ent = 0;
  for (float x : p) ent += x * std::log(x + 1e-10);
  CHECK(lopa_conf(p.data(), kVocab, 3, LOPA_CONF_NEG_ENTROPY) == doctest::Approx(ent).epsilon(1e-4));
  CHECK(lopa_conf(p.data(), kVocab, 3, LOPA_CONF_NEG_ENTROPY) <= 0.0f);
  std::vector<float> ties = {0.25f, 0.25f, 0.5f, 0.5f};
  CHECK(lopa_argmax(ties.data(), 4) == 2);
}

TEST_CASE("lopa logic: branch score, winner tie-break, top-k spawn (§3.2 steps 5, 6, 10; §8.10)") {
  auto c = config(3, 16, 8);
  Path w(c);
  lopa_prepare(&w.p, &c, 0);
  std::vector<float> conf(16, 0.0f);
  std::vector<int32_t> tok(16);
  for (int i = 0; i < 16; ++i) {
    conf[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i % 8);
    tok[static_cast<size_t>(i)] = 200 + i;
  }
  conf[3] = 0.7f;  // ties with position 3 + 7: the lower position ranks first
  CHECK(lopa_branch_score(&w.p, &c, conf.data()) == doctest::Approx((0.0 + 0.1 + 0.2 + 0.7 + 0.4 + 0.5 + 0.6 + 0.7) / 8));
  std::vector<float> scores = {0.5f, 0.7f, 0.7f, 0.7f};
  CHECK(lopa_pick_winner(scores.data(), 4, 0) == 1);  // earliest on exact ties (lookaheads before the anchor)
  CHECK(lopa_pick_winner(scores.data(), 4, 1) == 3);  // forced anchor
  scores = {0.1f, 0.2f, 0.9f};
  CHECK(lopa_pick_winner(scores.data(), 3, 0) == 2);
  int32_t pos[LOPA_MAX_LOOKAHEAD];
  const int32_t m = lopa_top_positions(&w.p, &c, conf.data(), 5, pos);
  REQUIRE(m == 5);
  CHECK(std::vector<int32_t>(pos, pos + 5) == std::vector<int32_t>{6, 10, 9, 8, 7});
  CHECK(lopa_top_positions(&w.p, &c, conf.data(), 16, pos) == 8);  // no more than the masks
  lopa_top_positions(&w.p, &c, conf.data(), 5, pos);
  std::vector<std::unique_ptr<Path>> kids;
  std::vector<lopa_path*> out;
  for (int j = 0; j < 5; ++j) {
    kids.push_back(std::make_unique<Path>(c));
    out.push_back(&kids.back()->p);
  }
  lopa_spawn(&w.p, &c, pos, 5, tok.data(), conf.data(), out.data());
  for (int j = 0; j < 5; ++j) {
    int diffs = 0;
    for (int i = 0; i < 8; ++i) diffs += kids[static_cast<size_t>(j)]->tok[static_cast<size_t>(i)] != w.tok[static_cast<size_t>(i)];
    CHECK(diffs == 1);
    CHECK(out[static_cast<size_t>(j)]->look_pos == pos[j]);
    CHECK(kids[static_cast<size_t>(j)]->tok[static_cast<size_t>(pos[j] - 3)] == tok[static_cast<size_t>(pos[j] - 3)]);
    CHECK(out[static_cast<size_t>(j)]->blocks[0].masks_left == 7);
    CHECK(out[static_cast<size_t>(j)]->blocks[0].state == LOPA_ACTIVE);
  }
  // A lookahead that fills the last mask of a block never retires it.
  auto c1 = config(3, 1, 1);
  Path one(c1);
  lopa_prepare(&one.p, &c1, 0);
  Path kid(c1);
  lopa_path* kp = &kid.p;
  int32_t p0 = 3;
  std::vector<int32_t> t1 = {5};
  std::vector<float> f1 = {0.5f};
  lopa_spawn(&one.p, &c1, &p0, 1, t1.data(), f1.data(), &kp);
  CHECK(kid.p.blocks[0].masks_left == 0);
  CHECK(kid.p.blocks[0].state == LOPA_ACTIVE);
  CHECK(lopa_branch_score(&kid.p, &c1, f1.data()) == 1.0f);  // no masks left: score 1
  // alpha blends in the confidence the branch was spawned with (the anchor's is 1).
  auto ca = c;
  ca.alpha = 0.25f;
  const double mean = (0.0 + 0.1 + 0.2 + 0.7 + 0.4 + 0.5 + 0.6 + 0.7) / 8;
  CHECK(lopa_branch_score(&w.p, &ca, conf.data()) == doctest::Approx(0.25 * 1.0 + 0.75 * mean));
  CHECK(out[0]->creation_conf == doctest::Approx(conf[static_cast<size_t>(pos[0] - 3)]));
  const double kid_mean = (mean * 8 - conf[static_cast<size_t>(pos[0] - 3)]) / 7;
  CHECK(lopa_branch_score(out[0], &ca, conf.data()) ==
        doctest::Approx(0.25 * out[0]->creation_conf + 0.75 * kid_mean));
  ca.alpha = 1.0f;
  CHECK(lopa_branch_score(&kid.p, &ca, f1.data()) == doctest::Approx(0.5));  // its creation conf alone
}

TEST_CASE("lopa logic: row layout, isolation and visibility (§1.4, §3.4)") {
  for (int full = 0; full < 2; ++full) {
    auto c = config(4, 24, 4);
    c.full_window = full;
    std::vector<int32_t> prompt = {1, 10, 11, 12};
    Path a(c);
    lopa_prepare(&a.p, &c, 2);  // kv 2: prompt rows 2, 3 are in the segment
    set_tok(a.p, c, 4, 7);
    lopa_prepare(&a.p, &c, 2);  // two blocks
    REQUIRE(a.p.n_blocks == 2);
    std::vector<float> conf(24, 0.5f);
    std::vector<int32_t> tok(24, 42);
    int32_t pos[2] = {5, 9};
    Path b0(c), b1(c);
    lopa_path* out[2] = {&b0.p, &b1.p};
    lopa_spawn(&a.p, &c, pos, 2, tok.data(), conf.data(), out);
    lopa_path* cands[3] = {&b0.p, &b1.p, &a.p};
    std::vector<lopa_row> rows(1024);
    lopa_layout L{};
    L.rows = rows.data();
    const int32_t n = lopa_layout_build(&L, cands, 3, &c, 2, prompt.data());
    CHECK(n == (full ? 3 * (2 + 8) : 2 + 3 * 8));
    CHECK(L.shared == !full);
    for (int32_t cand = 0; cand < 3; ++cand)
      for (int32_t q = 2; q < 12; ++q) {
        const int32_t r = lopa_layout_row(&L, cand, q);
        REQUIRE(r >= 0);
        CHECK(L.rows[r].pos == q);
        CHECK((L.rows[r].cand == cand || (L.rows[r].cand == -1 && !full && q < 4)));
      }
    CHECK(lopa_layout_row(&L, 0, 12) == -1);
    CHECK(L.rows[lopa_layout_row(&L, 0, 5)].token == 42);  // the lookahead token
    CHECK(L.rows[lopa_layout_row(&L, 2, 5)].token == kMask);
    CHECK(L.rows[lopa_layout_row(&L, 2, 3)].token == 12);
    CHECK(L.rows[lopa_layout_row(&L, 2, 3)].logits == 1);  // the segment's last row and shift-1 reader of position 4
    CHECK(L.rows[lopa_layout_row(&L, 2, 2)].logits == 0);
    CHECK(L.rows[lopa_layout_row(&L, 2, 4)].logits == 1);  // position 5 is masked in the anchor
    CHECK(L.rows[lopa_layout_row(&L, 0, 4)].logits == 0);  // ... but filled in branch 0
    for (int32_t i = 0; i < n; ++i)
      for (int32_t j = 0; j < n; ++j) {
        if (i == j) continue;
        const lopa_row &ri = L.rows[i], &rj = L.rows[j];
        const int s = lopa_layout_sees(&L, &c, i, j);
        if (rj.cand != -1 && rj.cand != ri.cand) CHECK(s == 0);  // isolation
        if (ri.block < 0) CHECK(s == (rj.block < 0 && rj.pos <= ri.pos && (rj.cand == -1 || rj.cand == ri.cand)));
        if (ri.block >= 0 && (rj.cand == ri.cand || rj.cand == -1))
          CHECK(s == (full ? 1 : (rj.block <= ri.block ? 1 : 0)));
      }
    c.max_rows = n - 1;
    CHECK(lopa_layout_build(&L, cands, 3, &c, 2, prompt.data()) == -1);
  }
}

// ---------------------------------------------------------------------------------------------
// Runtime tests on stories260K + an untrained MASK token.
namespace {

const engine::Model& mask_model(int shift, int block_len = 8) {
  static std::map<int, std::unique_ptr<engine::Model>> models;
  auto& m = models[shift * 1000 + block_len];
  if (!m) {
    const std::string out = temp_dir() + "/mask" + std::to_string(shift) + "-" + std::to_string(block_len) + ".gguf";
    const std::string cmd = build_root() + "/tools/specd-add-mask --model " + model_path("stories260K.gguf") +
                            " --out " + out + " --kind diffusion --block-len " + std::to_string(block_len) +
                            " --logit-shift " + std::to_string(shift);
    std::string log;
    REQUIRE_MESSAGE(run_command(cmd + " 2>&1", &log) == 0, log);
    auto r = engine::Model::load(out);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    m = std::move(r.value());
  }
  return *m;
}

struct LopaFixture {
  daemon::PluginRegistry plugins;
  kernels::ThreadPool pool{2};
  daemon::DecodeRuntime rt;
  explicit LopaFixture(const engine::Model& m, daemon::RuntimeLimits limits = {})
      : rt(m, RuntimeFixture::load(plugins, {"lopa", "ar"}), pool, limits) {}
  daemon::DecodeResult run(const daemon::DecodeRequest& req) {
    auto r = rt.run(req);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    REQUIRE_MESSAGE(r->finish_reason != SPECD_FINISH_ERROR, r->error.message);
    return std::move(r.value());
  }
};

std::vector<std::vector<int32_t>> lopa_prompts() {
  const auto& tok = stories_model().tokenizer();
  std::vector<std::vector<int32_t>> out;
  for (const char* text : {"Once upon a time", "The cat sat on the mat. The cat", "Lily was happy. She",
                           "Tom and Sam went to the park to play with a big red ball. Then"})
    out.push_back(tok.encode(text, true));
  return out;
}

daemon::DecodeRequest lreq(const std::vector<int32_t>& prompt, int32_t max_tokens, const std::string& opts) {
  auto r = request(prompt, max_tokens, "lopa", opts);
  r.stop_tokens.clear();  // EOS ends generation by the decoder's own rule (no blocks after it)
  return r;
}

// The §8 checks every run must pass.
// rounds_bound: every step is a decoding round (no prompt chunks, no commit-only steps forced by a
// tiny row budget), so steps ≤ generated positions + 1.
void check_run(const daemon::DecodeResult& r, int32_t max_tokens, const std::string& what, bool rounds_bound = true) {
  INFO(what);
  CHECK(r.finish_reason != SPECD_FINISH_ERROR);
  CHECK(std::find(r.tokens.begin(), r.tokens.end(), kMask) == r.tokens.end());
  CHECK(static_cast<int32_t>(r.tokens.size()) <= max_tokens);
  const bool eos = std::find(r.tokens.begin(), r.tokens.end(), kEos) != r.tokens.end();
  if (!eos) CHECK(static_cast<int32_t>(r.tokens.size()) == max_tokens);
  if (rounds_bound) CHECK(r.steps <= static_cast<int32_t>(r.tokens.size()) + 1);  // ≥ 1 fill per round
}

}  // namespace

TEST_CASE("lopa: a model without MASK and bad options are named errors") {
  LopaFixture plain(stories_model());
  auto r = plain.rt.run(request({1, 403}, 8, "lopa"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_UNSUPPORTED);
  CHECK(r.error().message.find("no MASK token") != std::string::npos);
  LopaFixture f(mask_model(1));
  for (const char* opts : {R"({"k": "17"})", R"({"k": "-1"})", R"({"block": "0"})", R"({"tau_conf": "3"})",
                           R"({"tau_add": "1.5"})", R"({"tau_act": "x"})", R"({"confidence": "max"})",
                           R"({"attention": "causal"})", R"({"force_anchor": "2"})", R"({"alpha": "1.5"})",
                           R"({"alpha": "-0.1"})", R"({"bogus": "1"})"}) {
    auto e = f.rt.run(request({1, 403}, 8, "lopa", opts));
    REQUIRE_FALSE(e.has_value());
    CHECK_MESSAGE(e.error().code == SPECD_E_BAD_OPTION, opts);
  }
  auto named = f.rt.run(request({1, 403}, 8, "lopa", R"({"attention": "causal"})"));
  REQUIRE_FALSE(named.has_value());
  CHECK(named.error().message.find("block-causal or full-window") != std::string::npos);
  daemon::RuntimeLimits lim;
  lim.max_rows_per_seq = 8;  // a block of 8 needs 9 rows (the last committed row predicts its first token)
  LopaFixture tight(mask_model(1), lim);
  auto small = tight.rt.run(request({1, 403}, 8, "lopa"));
  REQUIRE_FALSE(small.has_value());
  CHECK(small.error().code == SPECD_E_BAD_OPTION);
  auto fits = tight.rt.run(request({1, 403}, 20, "lopa", R"({"block": "7", "k": "3"})"));
  REQUIRE(fits.has_value());
  check_run(*fits, 20, "8 rows, block 7", false);
}

TEST_CASE("lopa D2F: termination, lengths, no MASK, determinism across configurations (§8.1-3, §8.8)") {
  LopaFixture f(mask_model(1));
  int runs = 0;
  const auto prompts = lopa_prompts();
  for (size_t pi : {size_t{0}, size_t{3}})
    for (const char* opts :
         {R"({})", R"({"tau_conf": "0.5", "tau_add": "0.5"})", R"({"tau_conf": "0.3", "tau_add": "0", "tau_act": "0.5"})",
          R"({"block": "4", "confidence": "margin"})", R"({"block": "5", "confidence": "neg_entropy", "tau_conf": "0.6"})",
          R"({"attention": "full-window", "tau_conf": "0.5"})", R"({"k": "3", "tau_conf": "0.5"})",
          R"({"k": "8", "attention": "block-causal", "confidence": "neg_entropy"})"})
      for (int32_t max_tokens : {13, 29}) {
        const auto& p = prompts[pi];
        const auto a = f.run(lreq(p, max_tokens, opts));
        check_run(a, max_tokens, opts);
        if (pi == 0) {
          const auto b = f.run(lreq(p, max_tokens, opts));
          CHECK(a.tokens == b.tokens);
          CHECK(a.steps == b.steps);
        }
        ++runs;
      }
  MESSAGE(runs << " lopa runs terminated, deterministic");
}

TEST_CASE("lopa D2F degenerate thresholds: τ_conf = 0 fills whole blocks, τ_conf > 1 one token per step (§8.7)") {
  LopaFixture f(mask_model(1));
  const auto prompt = lopa_prompts()[0];
  // τ_conf 0, τ_add 1: each round fills its block at once, retires and emits it: bs tokens a step.
  auto all = f.run(lreq(prompt, 32, R"({"tau_conf": "0", "tau_add": "1"})"));
  check_run(all, 32, "tau_conf 0");
  const bool eos = std::find(all.tokens.begin(), all.tokens.end(), kEos) != all.tokens.end();
  if (!eos) {
    CHECK(all.steps == 4);
    CHECK(all.tokens_per_forward() == doctest::Approx(8.0));
  }
  // The default block size is the model's specd.dllm.block_len (4 here): 32 tokens in 8 rounds.
  LopaFixture f4(mask_model(1, 4));
  auto b4 = f4.run(lreq(prompt, 32, R"({"tau_conf": "0", "tau_add": "1"})"));
  check_run(b4, 32, "block_len 4");
  if (std::find(b4.tokens.begin(), b4.tokens.end(), kEos) == b4.tokens.end()) CHECK(b4.steps == 8);
  // τ_conf > 1 and τ_add = τ_act = 1: serial semi-AR blocks, exactly one fill per step.
  auto one = f.run(lreq(prompt, 24, R"({"tau_conf": "1.5", "tau_add": "1", "tau_act": "1"})"));
  check_run(one, 24, "tau_conf 1.5");
  CHECK(one.steps == static_cast<int32_t>(one.tokens.size()));
  // block = max_tokens and τ_conf > 1: one token per step in one block; everything is emitted at the end.
  auto blk = f.run(lreq(prompt, 12, R"({"tau_conf": "1.5", "block": "12"})"));
  check_run(blk, 12, "block 12");
  CHECK(blk.steps == static_cast<int32_t>(blk.tokens.size()));
  CHECK(blk.prefill_tokens == static_cast<int32_t>(blk.tokens.size()));
}

TEST_CASE("lopa D2F: with logit shift the AR prediction makes the first mask confident: TPF > 1 at low τ") {
  LopaFixture f(mask_model(1));
  double tokens = 0, steps = 0;
  for (const auto& p : lopa_prompts()) {
    auto r = f.run(lreq(p, 64, R"({"tau_conf": "0.3", "tau_add": "0.1", "tau_act": "0.5"})"));
    check_run(r, 64, "low tau");
    tokens += static_cast<double>(r.tokens.size());
    steps += r.steps;
  }
  MESSAGE("untrained MASK model, τ_conf 0.3: tokens per step " << tokens / steps);
  CHECK(tokens / steps > 1.0);
}

namespace {
// Snapshots of the committed cache, taken at every emit (on_tokens runs inside accept).
struct CacheWatch {
  daemon::DecodeRuntime* rt;
  int32_t prompt_len, bs;
  int32_t emitted = 0, last_kv = 0;
  bool ok = true;
  std::vector<float> k, v;  // [layers][kv_len][kv_dim] of the last snapshot
  int32_t kv_len = 0;
};

void watch(int64_t, const int32_t*, int32_t n, std::string_view, void* user) {
  auto* w = static_cast<CacheWatch*>(user);
  auto& kv = w->rt->kv();
  const int32_t len = kv.length(0);  // the only sequence of a fresh runtime
  w->emitted += n;
  // §8.4: blocks enter the cache in order, C = P + bs · #in_cache blocks, never ahead of what was emitted.
  if (len < w->last_kv || len < w->prompt_len - 1 || (len >= w->prompt_len && (len - w->prompt_len) % w->bs != 0) ||
      len > w->prompt_len + w->emitted)
    w->ok = false;
  w->last_kv = len;
  const int32_t L = w->rt->model().config().n_layers, d = kv.kv_dim();
  w->k.assign(static_cast<size_t>(L) * static_cast<size_t>(len) * static_cast<size_t>(d), 0.0f);
  w->v = w->k;
  for (int32_t l = 0; l < L; ++l)
    for (int32_t p = 0; p < len; ++p) {
      const size_t at = (static_cast<size_t>(l) * static_cast<size_t>(len) + static_cast<size_t>(p)) * static_cast<size_t>(d);
      if (!w->rt->forward().read_kv(0, l, p, &w->k[at], &w->v[at])) w->ok = false;
    }
  w->kv_len = len;
}
}  // namespace

TEST_CASE("lopa block-causal: committed K/V equal a fresh block-causal prefill of the committed tokens (§8.4-5)") {
  const auto& model = mask_model(1);
  for (const char* opts : {R"({"tau_conf": "0.4", "tau_add": "0.2", "tau_act": "0.6"})",
                           R"({"k": "4", "attention": "block-causal", "tau_conf": "0.5"})"}) {
    LopaFixture f(model);
    const auto prompt = lopa_prompts()[3];
    CacheWatch w{&f.rt, static_cast<int32_t>(prompt.size()), 8, 0, 0, true, {}, {}, 0};
    auto req = lreq(prompt, 48, opts);
    auto r = f.rt.run(req, watch, &w);
    REQUIRE(r.has_value());
    check_run(*r, 48, opts);
    CHECK(w.ok);
    REQUIRE(w.kv_len > w.prompt_len);
    // Fresh forward: the prompt causal, each block sees the prompt, earlier blocks and itself.
    std::vector<int32_t> toks = prompt;
    toks.insert(toks.end(), r->tokens.begin(), r->tokens.end());
    engine::KvCache kv(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len);
    engine::Forward fwd(model, kv, f.pool);
    engine::Batch batch(256);
    auto seq_r = kv.create_seq();
    REQUIRE(seq_r.has_value());
    const engine::SeqId seq = seq_r.value();
    std::vector<int32_t> rows;
    const int32_t P = w.prompt_len;
    for (int32_t p = 0; p < w.kv_len; ++p) rows.push_back(batch.add(seq, toks[static_cast<size_t>(p)], p, 0));
    for (int32_t i = 0; i < w.kv_len; ++i)
      for (int32_t j = 0; j < w.kv_len; ++j) {
        const bool see = i < P ? j <= i : (j < P || (j - P) / 8 <= (i - P) / 8);
        if (see) batch.see(i, j);
      }
    REQUIRE(fwd.run(batch).has_value());
    REQUIRE(fwd.commit(seq, rows).has_value());
    float worst = 0.0f;
    const int32_t d = kv.kv_dim();
    std::vector<float> fk(static_cast<size_t>(d)), fv(fk);
    for (int32_t l = 0; l < model.config().n_layers; ++l)
      for (int32_t p = 0; p < w.kv_len; ++p) {
        REQUIRE(fwd.read_kv(seq, l, p, fk.data(), fv.data()).has_value());
        for (int32_t e = 0; e < d; ++e) {
          const size_t at = (static_cast<size_t>(l) * w.kv_len + p) * d + e;
          worst = std::max(worst, std::fabs(w.k[at] - fk[static_cast<size_t>(e)]));
          worst = std::max(worst, std::fabs(w.v[at] - fv[static_cast<size_t>(e)]));
        }
      }
    MESSAGE(std::string(opts) << ": " << w.kv_len << " committed positions, max |ΔK/V| " << worst);
    CHECK(worst < 1e-4f);
  }
}

TEST_CASE("lopa LoPA: k = 0 is D2F; a forced anchor, or alpha = 1, keeps the k = 0 lineage (§8.9)") {
  LopaFixture f(mask_model(1));
  int same = 0, total = 0;
  const auto prompts = lopa_prompts();
  for (size_t pi : {size_t{3}})
    for (const char* att : {"block-causal", "full-window"}) {
      const std::string base = std::string(R"({"tau_conf": "0.4", "tau_add": "0.2", "attention": ")") + att + "\"";
      const auto& p = prompts[pi];
      const auto d2f = f.run(lreq(p, 32, base + "}"));
      const auto k0 = f.run(lreq(p, 32, base + R"(, "k": "0"})"));
      CHECK(k0.tokens == d2f.tokens);
      CHECK(k0.steps == d2f.steps);
      // With alpha = 1 a branch scores its creation confidence, below τ_conf (else the anchor had
      // filled it), and the anchor scores 1: the anchor always wins.
      for (const char* anchor : {R"(, "force_anchor": "1")", R"(, "alpha": "1")"})
        for (const char* k : {"1", "6"}) {
          const auto forced = f.run(lreq(p, 32, base + anchor + R"(, "k": ")" + k + "\"}"));
          same += forced.tokens == d2f.tokens && forced.steps == d2f.steps;
          ++total;
          if (std::string(att) == "block-causal") {
            CHECK(forced.tokens == d2f.tokens);
            CHECK(forced.steps == d2f.steps);
          }
        }
    }
  MESSAGE("forced-anchor and alpha = 1 runs identical to k = 0: " << same << "/" << total);
  CHECK(same == total);
}

TEST_CASE("lopa engine isolation: perturbing one branch leaves the others' logits bit-identical (§8.11)") {
  const auto& model = mask_model(1);
  for (int full = 0; full < 2; ++full) {
    auto c = config(4, 24, 4);
    c.full_window = full;
    c.vocab = model.config().vocab;
    const std::vector<int32_t> prompt = {1, 403, 407, 261};
    Path a(c);
    lopa_prepare(&a.p, &c, 0);
    set_tok(a.p, c, 4, 300);
    lopa_prepare(&a.p, &c, 0);
    std::vector<float> conf(24, 0.5f);
    std::vector<int32_t> tok(24, 350);
    int32_t pos[3] = {5, 6, 9};
    Path b0(c), b1(c), b2(c);
    lopa_path* out[3] = {&b0.p, &b1.p, &b2.p};
    lopa_spawn(&a.p, &c, pos, 3, tok.data(), conf.data(), out);
    lopa_path* cands[4] = {&b0.p, &b1.p, &b2.p, &a.p};
    std::vector<lopa_row> rows(1024);
    lopa_layout L{};
    L.rows = rows.data();
    const int32_t n = lopa_layout_build(&L, cands, 4, &c, 0, prompt.data());
    REQUIRE(n > 0);
    auto run = [&](int32_t perturb_row, std::vector<std::vector<float>>& logits) {
      engine::KvCache kv(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len);
      kernels::ThreadPool pool(2);
      engine::Forward fwd(model, kv, pool);
      engine::Batch batch(256);
      auto seq_r = kv.create_seq();
      REQUIRE(seq_r.has_value());
      const engine::SeqId seq = seq_r.value();
      for (int32_t i = 0; i < n; ++i)
        batch.add(seq, i == perturb_row ? 77 : rows[static_cast<size_t>(i)].token, rows[static_cast<size_t>(i)].pos,
                  engine::ROW_WANT_LOGITS);
      for (int32_t i = 0; i < n; ++i) {
        batch.see(i, i);
        for (int32_t j = 0; j < n; ++j)
          if (j != i && lopa_layout_sees(&L, &c, i, j)) batch.see(i, j);
      }
      REQUIRE(fwd.run(batch).has_value());
      logits.clear();
      for (int32_t i = 0; i < n; ++i) {
        auto s = fwd.logits(batch.row(i).out_index);
        logits.emplace_back(s.begin(), s.end());
      }
    };
    std::vector<std::vector<float>> base, pert;
    run(-1, base);
    const int32_t victim = lopa_layout_row(&L, 1, 8);  // a mask row of branch 1
    REQUIRE(victim >= 0);
    run(victim, pert);
    int changed = 0;
    for (int32_t i = 0; i < n; ++i) {
      const auto& r = rows[static_cast<size_t>(i)];
      if (r.cand == 1) {
        changed += base[static_cast<size_t>(i)] != pert[static_cast<size_t>(i)];
        continue;
      }
      CHECK_MESSAGE(base[static_cast<size_t>(i)] == pert[static_cast<size_t>(i)], "row " << i << " cand " << r.cand);
    }
    CHECK(changed > 0);
    // §8.12: the winner's commit rows are its own segment rows (full window) or the shared ones.
    for (int32_t cand = 0; cand < 4; ++cand) {
      const int32_t r0 = lopa_layout_row(&L, cand, 0);
      CHECK(rows[static_cast<size_t>(r0)].cand == (full ? cand : -1));
    }
  }
}

TEST_CASE("lopa LoPA: lookahead runs, sampling, a small row budget and prefill chunks") {
  LopaFixture f(mask_model(1));
  const auto p = lopa_prompts()[3];
  double d2f_tpf = 0, lopa_tpf = 0;
  const auto qs = lopa_prompts();
  for (size_t i : {size_t{0}, size_t{3}}) {
    d2f_tpf += f.run(lreq(qs[i], 32, R"({"tau_conf": "0.5", "attention": "full-window"})")).tokens_per_forward();
    lopa_tpf += f.run(lreq(qs[i], 32, R"({"tau_conf": "0.5", "k": "4"})")).tokens_per_forward();
  }
  MESSAGE("untrained MASK model, τ_conf 0.5, full window: D2F TPF " << d2f_tpf / 2 << ", LoPA k=4 TPF " << lopa_tpf / 2);
  // Sampling: the same seed gives the same stream, no MASK.
  auto sreq = lreq(p, 40, R"({"k": "2", "tau_conf": "0.5"})");
  sreq.sampling.temperature = 0.8f;
  sreq.sampling.top_p = 0.9f;
  sreq.sampling.seed = 5;
  const auto s1 = f.run(sreq), s2 = f.run(sreq);
  check_run(s1, 40, "sampled");
  CHECK(s1.tokens == s2.tokens);
  // A row budget of 12 forces prompt chunks and drops lookaheads that do not fit.
  daemon::RuntimeLimits lim;
  lim.max_rows_per_seq = 12;
  LopaFixture small(mask_model(1), lim);
  const auto r = small.run(lreq(p, 30, R"({"k": "8", "block": "4", "tau_conf": "0.5"})"));
  check_run(r, 30, "12 rows", false);
  const auto ref = f.run(lreq(p, 30, R"({"block": "4", "tau_conf": "0.5"})"));
  const auto r0 = small.run(lreq(p, 30, R"({"block": "4", "tau_conf": "0.5"})"));
  check_run(r0, 30, "12 rows, k 0", false);
  CHECK(r0.tokens.size() == ref.tokens.size());
  // Without logit shift (LLaDA-style) the decoder runs too.
  LopaFixture ns(mask_model(0));
  check_run(ns.run(lreq(p, 24, R"({"k": "2"})")), 24, "shift 0");
  // Stop tokens end the run at EOS through the host.
  auto stop = request(p, 40, "lopa", R"({"tau_conf": "0"})");
  const auto st = f.run(stop);
  CHECK(std::find(st.tokens.begin(), st.tokens.end(), kMask) == st.tokens.end());
}

TEST_CASE("lopa on the trained D2F model (scripts/train.sh d2f): runs, TPF ≥ 1, LoPA reported beside D2F") {
  const std::string path = trained_model("stories260K-d2f.gguf");
  REQUIRE_MESSAGE(!path.empty(), "no stories260K-d2f.gguf: run scripts/train.sh d2f --smoke (or scripts/test.sh)");
  auto m = engine::Model::load(path);
  REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
  REQUIRE((*m)->config().mask == kMask);
  REQUIRE((*m)->config().logit_shift == 1);
  LopaFixture f(**m);
  for (const char* opts : {R"({"tau_conf": "0.9"})", R"({"tau_conf": "0.5"})", R"({"tau_conf": "0.5", "k": "4"})"}) {
    double toks = 0, steps = 0;
    const auto ps = lopa_prompts();
    for (size_t i : {size_t{0}, size_t{3}}) {
      auto r = f.run(lreq(ps[i], 32, opts));
      check_run(r, 32, opts);
      toks += static_cast<double>(r.tokens.size());
      steps += r.steps;
    }
    MESSAGE(path << " " << std::string(opts) << ": tokens per step " << toks / steps);
    CHECK(toks / steps >= 1.0);
  }
}

TEST_CASE("lopa: steady-state rounds allocate nothing (state preallocated in begin)") {
  for (const char* opts : {R"({"tau_conf": "0", "tau_add": "1"})",
                           R"({"k": "4", "tau_conf": "1.5", "tau_add": "1", "tau_act": "1"})",
                           R"({"k": "4", "tau_conf": "1.5", "tau_add": "1", "tau_act": "1", "attention": "block-causal"})"}) {
    LopaFixture f(mask_model(1));
    f.run(lreq(lopa_prompts()[0], 160, opts));  // the host's batch and forward scratch reach their high-water marks
    auto id = f.rt.submit(lreq(lopa_prompts()[0], 160, opts), {});
    REQUIRE(id.has_value());
    for (int i = 0; i < 4; ++i) f.rt.step();
    const long before = allocation_count();
    for (int i = 0; i < 12; ++i) f.rt.step();
    CHECK_MESSAGE(allocation_count() - before == 0, std::string(opts));
    CHECK(f.rt.active() == 1);
  }
}

TEST_CASE("lopa auto's expected progress: a prior worth a few rounds, a decayed mean, never less for more branches") {
  lopa_auto a;
  lopa_auto_init(&a);
  CHECK(lopa_auto_expected(&a, 0) == doctest::Approx(LOPA_AUTO_PRIOR_D2F));        // nothing seen: the prior
  CHECK(lopa_auto_expected(&a, 2) == doctest::Approx(1.5 * LOPA_AUTO_PRIOR_D2F));  // 1 + 2/4 times k = 0's
  CHECK(lopa_auto_expected(&a, -1) == 0.0);
  CHECK(lopa_auto_expected(&a, LOPA_MAX_LOOKAHEAD + 1) == 0.0);
  for (int i = 0; i < 20; ++i) lopa_auto_record(&a, 0, 1);
  CHECK(lopa_auto_expected(&a, 0) < 1.2);  // the prior weighs 3 rounds
  for (int i = 0; i < 20; ++i) lopa_auto_record(&a, 0, 2);
  const double k0 = lopa_auto_expected(&a, 0);
  CHECK(k0 > 1.6);  // follows the recent rounds
  // One unlucky round at k = 1 does not set its mean to one position, nor below k = 0's.
  lopa_auto_record(&a, 1, 1);
  CHECK(lopa_auto_expected(&a, 1) >= lopa_auto_expected(&a, 0));
  CHECK(lopa_auto_expected(&a, 1) > 1.5);
  // Many rounds at k = 2 decoding 4: its mean follows them, and k = 3 is expected to do as well.
  for (int i = 0; i < 200; ++i) lopa_auto_record(&a, 2, 4);
  CHECK(lopa_auto_expected(&a, 2) == doctest::Approx(4.0).epsilon(0.05));  // the prior still weighs 3 of ~53 rounds
  CHECK(lopa_auto_expected(&a, 3) >= lopa_auto_expected(&a, 2));
  lopa_auto_record(&a, LOPA_MAX_LOOKAHEAD + 1, 9);  // ignored
  lopa_auto_record(&a, 1, -1);                      // ignored
  CHECK(lopa_auto_expected(&a, 2) == doctest::Approx(4.0).epsilon(0.05));  // the prior still weighs 3 of ~53 rounds
}

TEST_CASE("lopa auto=1: each round's branch count is chosen and recorded; every run check holds; needs a 1.2 host") {
  LopaFixture f(mask_model(1));
  const auto ps = lopa_prompts();
  for (const char* opts : {R"({"auto": "1", "tau_conf": "0.5"})", R"({"auto": "1", "k": "2", "tau_conf": "0.5"})"}) {
    for (size_t i : {size_t{0}, size_t{3}}) {
      auto r = f.run(lreq(ps[i], 32, opts));
      check_run(r, 32, opts);
      REQUIRE_FALSE(r.settings.empty());
      for (const auto& c : r.settings) {
        const std::string l = c.label;
        CAPTURE(l);
        if (l == "plain") continue;  // a plain step (this model has the logit shift)
        REQUIRE(l.rfind("k=", 0) == 0);
        CHECK(std::stoi(l.substr(2)) <= (std::string(opts).find("\"k\"") != std::string::npos ? 2 : 4));
      }
    }
  }
  const auto fixed = f.run(lreq(ps[0], 16, R"({"k": "2", "tau_conf": "0.5"})"));
  CHECK(fixed.settings.empty());
  daemon::RuntimeLimits old;
  old.host_abi_minor = 1;
  LopaFixture f11(mask_model(1), old);
  auto refused = f11.rt.run(lreq(ps[0], 8, R"({"auto": "1"})"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == SPECD_E_BAD_OPTION);
  CHECK(refused.error().message.find("auto") != std::string::npos);
  for (const char* bad : {R"({"auto": "2"})", R"({"auto": "yes"})"}) {
    auto e = f.rt.run(lreq(ps[0], 8, bad));
    REQUIRE_FALSE(e.has_value());
    CHECK(e.error().code == SPECD_E_BAD_OPTION);
  }
}

TEST_CASE("lopa logic: a plain step's token joins the last finished block, never an active one, within the cap") {
  auto c = config(4, 12, 8);
  c.max_blocks += 1;  // as begin() sizes it with auto
  Path a(c);
  CHECK(lopa_append_plain(&a.p, &c, 7) == 0);  // no block yet: one of its own
  REQUIRE(a.p.n_blocks == 1);
  CHECK(a.p.blocks[0].start == 4);
  CHECK(a.p.blocks[0].len == 1);
  CHECK(a.p.blocks[0].state == LOPA_TO_CACHE);
  CHECK(a.p.blocks[0].masks_left == 0);
  CHECK(lopa_seg_end(&a.p, &c) == 5);
  lopa_mark_cached(&a.p);
  CHECK(lopa_append_plain(&a.p, &c, 8) == 0);  // merged: the committed block reopens to_cache
  CHECK(a.p.n_blocks == 1);
  CHECK(a.p.blocks[0].len == 2);
  CHECK(a.p.blocks[0].state == LOPA_TO_CACHE);
  CHECK(a.tok[0] == 7);
  CHECK(a.tok[1] == 8);
  CHECK(lopa_seg_end(&a.p, &c) == 6);
  // hold: no new block, whatever τ_add says
  c.hold = 1;
  CHECK(lopa_prepare(&a.p, &c, 6) == 0);
  CHECK(a.p.n_blocks == 1);
  c.hold = 0;
  // Back to D2F: a block of bs after the plain tokens (ratio 1 passes τ_add); no plain step beside it.
  CHECK(lopa_prepare(&a.p, &c, 6) == 1);
  REQUIRE(a.p.n_blocks == 2);
  CHECK(a.p.blocks[1].start == 6);
  CHECK(a.p.blocks[1].len == 8);
  CHECK(a.p.blocks[1].fully_active == 1);
  CHECK(lopa_append_plain(&a.p, &c, 9) == -1);
  CHECK(a.p.blocks[1].len == 8);
  for (int32_t q = 6; q < 14; ++q) set_tok(a.p, c, q, 100 + q);
  CHECK(lopa_retire(&a.p) == 1);
  // Plain again up to the cap of 12 positions (2 + 8 + 2), then no room: nothing changes.
  CHECK(lopa_append_plain(&a.p, &c, 9) == 0);
  CHECK(lopa_append_plain(&a.p, &c, 10) == 0);
  CHECK(a.p.blocks[1].len == 10);
  CHECK(lopa_append_plain(&a.p, &c, 11) == -1);
  CHECK(a.p.blocks[1].len == 10);
  CHECK(lopa_done(&a.p, &c) == 1);
  // an EOS ends the path like a filled one
  Path e(c);
  CHECK(lopa_append_plain(&e.p, &c, kEos) == 0);
  CHECK(e.p.eos == 1);
  CHECK(lopa_done(&e.p, &c) == 1);
}

TEST_CASE("lopa auto's choice: plain steps when no round pays, rounds when they do, probes priced at a block") {
  const int32_t bs = 8;
  lopa_auto a;
  lopa_auto_init(&a);
  // A D2F round costs 12 one-row steps (a tiny model's window) for the prior's 2 positions: plain.
  double cost[LOPA_MAX_LOOKAHEAD + 2] = {1.0, 12.0, 20.0, 28.0};
  CHECK(lopa_auto_pick(&a, cost, 2, 1, bs) == LOPA_AUTO_PLAIN);
  // Without the logit shift there is no plain step: the cheapest round.
  CHECK(lopa_auto_pick(&a, cost, 2, 0, bs) == 0);
  // Plain steps do not probe a round while its block would cost more than 2 % of them.
  lopa_auto_init(&a);
  int32_t probes = 0, first = -1;
  for (int32_t i = 1; i <= 10000; ++i)
    if (lopa_auto_pick(&a, cost, 2, 1, bs) != LOPA_AUTO_PLAIN) {
      ++probes;
      if (first < 0) first = i;
    }
  CHECK(probes >= 1);
  CHECK(first >= 8 * 11 / 0.02 * 0.99);  // bs × (12 - 1) extra against 2 % of the plain steps
  CHECK(probes <= 2);
  // A round that decodes 6 positions for 1.5 steps' cost pays: rounds from the first choice.
  lopa_auto_init(&a);
  for (int i = 0; i < 30; ++i) lopa_auto_record(&a, 0, 6);
  double cheap[LOPA_MAX_LOOKAHEAD + 2] = {1.0, 1.5, 2.2};
  CHECK(lopa_auto_pick(&a, cheap, 1, 1, bs) >= 0);
  // Seeded from an earlier request: its rounds, capped at LOPA_AUTO_SEED_ROUNDS, and its layout.
  lopa_auto_note_layout(&a, 3, 17);
  lopa_auto_hist h{};
  lopa_auto_seed(&a, &h);  // zeroed memory: nothing to seed from
  CHECK(a.rounds[0] > 20.0);
  lopa_auto_keep(&h, &a);
  CHECK(h.version == LOPA_AUTO_HIST_VERSION);
  lopa_auto b;
  lopa_auto_init(&b);
  lopa_auto_seed(&b, &h);
  CHECK(b.rounds[0] == doctest::Approx(LOPA_AUTO_SEED_ROUNDS));
  CHECK(b.sum[0] / b.rounds[0] == doctest::Approx(a.sum[0] / a.rounds[0]));
  CHECK(b.shared_rows == 3);
  CHECK(b.window_rows == 17);
  h.size += 1;  // another build's layout: ignored
  lopa_auto c;
  lopa_auto_init(&c);
  lopa_auto_seed(&c, &h);
  CHECK(c.rounds[0] == 0.0);
  lopa_auto_seed(&c, nullptr);
  CHECK(c.rounds[0] == 0.0);
}

TEST_CASE("lopa auto=1 where one-row steps are far cheaper than a round: plain steps from round 1, ar's greedy tokens") {
  namespace fs = std::filesystem;
  const ScopedCostCache scope("specd_lopa_plain");
  const fs::path dir = scope.dir;
  { LopaFixture calibrate(mask_model(1)); }  // writes the one cache file, replaced below
  // A cost model in which n rows cost n one-row forwards (a live step keeps this shape): no D2F
  // round, which needs a window of blocks, can pay for the 2 positions auto first expects of it.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir / "cost")) {
    std::ofstream out(e.path(), std::ios::trunc);
    out << "specd-cost-v2 " << std::time(nullptr) << "\n1:0.001 2:0.002 4:0.004 8:0.008 16:0.016 32:0.032 64:0.064\n";
    ++files;
  }
  REQUIRE(files == 1);
  LopaFixture f(mask_model(1));
  for (const auto& p : lopa_prompts()) {
    auto r = f.run(lreq(p, 24, R"({"auto": "1"})"));
    check_run(r, 24, "auto plain");
    CAPTURE(daemon::settings_json(r));
    REQUIRE(r.settings.size() == 1);
    CHECK(std::string(r.settings[0].label) == "plain");
    auto ar = request(p, 24, "ar");
    ar.stop_tokens.clear();
    const auto want = f.run(ar);
    // The same tokens as ar up to lopa's end (the EOS it stops at, or the length).
    REQUIRE(r.tokens.size() <= want.tokens.size());
    CHECK(std::vector<int32_t>(want.tokens.begin(), want.tokens.begin() + static_cast<std::ptrdiff_t>(r.tokens.size())) ==
          r.tokens);
    CHECK(r.steps == static_cast<int32_t>(r.tokens.size()));  // one row, one token per step
    // Sampled plain steps: the same seed gives the same stream, never a MASK.
    auto sreq = lreq(p, 24, R"({"auto": "1"})");
    sreq.sampling.temperature = 0.8f;
    sreq.sampling.seed = 11;
    const auto s1 = f.run(sreq), s2 = f.run(sreq);
    check_run(s1, 24, "auto plain, sampled");
    CHECK(s1.tokens == s2.tokens);
  }
}
