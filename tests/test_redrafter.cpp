// ReDrafter (docs: methods/redrafter.md): the tree of §4 (with the §4.4 vectors), beam selection,
// and the plugin against ar — greedy identity with trained and random drafters, the exact rule's
// sampling law, batching, progress bounds and named errors (§12's invariants).
extern "C" {
#include "plugins/redrafter/redrafter_auto.h"
#include "plugins/redrafter/redrafter_beam.h"
#include "plugins/redrafter/redrafter_tree.h"
}
#include "engine/gguf_writer.h"
#include "tests/alloc_counter.h"
#include "tests/lossless_prompts.h"
#include "tests/runtime_fixture.h"

#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <random>

using namespace specd;
using namespace specd::test;

namespace {

struct Tree {
  std::vector<int32_t> storage;
  rd_tree t{};
  Tree(int32_t W, int32_t L, const std::vector<int32_t>& beams) : storage(rd_tree_ints(W, L)) {
    rd_tree_init(&t, W, L, storage.data());
    rd_tree_pack(&t, beams.data());
  }
  std::vector<int32_t> tok() const { return {t.tok, t.tok + t.n}; }
  std::vector<int32_t> unpacker() const { return {t.unpacker, t.unpacker + t.W * t.L}; }
  std::vector<int32_t> tree() const { return {t.tree, t.tree + t.W * t.L}; }
  std::vector<int32_t> beam_pos() const { return {t.beam_pos, t.beam_pos + t.n}; }
};

// §12.4 and §12.5 on any packing.
void check_tree_invariants(const rd_tree& t, const std::vector<int32_t>& beams) {
  const int32_t W = t.W, L = t.L;
  int32_t expect_n = 0;
  for (int32_t i = 0; i < W; ++i) {
    CHECK(t.tree[i * L] == 0);
    for (int32_t j = 0; j < L; ++j) {
      CHECK(t.tree[i * L + j] <= i);
      if (j > 0) CHECK(t.tree[i * L + j] >= t.tree[i * L + j - 1]);
      CHECK(t.tok[t.unpacker[i * L + j]] == beams[static_cast<size_t>(i * L + j)]);
      if (j > 0) CHECK(t.unpacker[i * L + j] > t.unpacker[i * L + j - 1]);
    }
    CHECK(t.unpacker[i * L] == 0);
    expect_n += L - t.div[i];
  }
  CHECK(t.n == expect_n);
  CHECK(t.n <= 1 + W * (L - 1));
  for (int32_t p = 0; p < t.n; ++p) {  // mask rows: the root path, lower-triangular, depth + 1 long
    int32_t len = 1;
    for (int32_t a = t.parent[p]; a >= 0; a = t.parent[a], ++len) CHECK(a < p);
    CHECK(len == t.depth[p] + 1);
  }
  CHECK(t.parent[0] == -1);
}

// A drafter file for stories260K with random weights, or (wrong) one that always drafts token 0
// (<unk>, which the model never predicts): all weights zero but the RNN bias, so s = SiLU(5) and
// a = [h ; s]; head row 0 reads the state part, every other row is zero.
std::string write_drafter(const std::string& dir, const std::string& name, const std::string& digest, uint32_t seed,
                          bool wrong = false, int32_t k_trained = 5, bool drop_head = false) {
  const int32_t V = 512, IN = 64, H = 64, E = 128, D = 2;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.15f);
  std::vector<std::vector<float>> keep;
  engine::GgufWriter w;
  w.set_string("general.architecture", "specd-redrafter");
  w.set_i32("specd.redrafter.vocab", V);
  w.set_i32("specd.redrafter.input_dim", IN);
  w.set_i32("specd.redrafter.state_dim", H);
  w.set_i32("specd.redrafter.exit_dim", E);
  w.set_i32("specd.redrafter.n_blocks", D);
  w.set_i32("specd.redrafter.k_trained", k_trained);
  w.set_string("specd.redrafter.target_digest", digest);
  auto add = [&](const std::vector<int64_t>& ne) -> std::vector<float>& {
    size_t count = 1;
    for (auto x : ne) count *= static_cast<size_t>(x);
    auto& v = keep.emplace_back(count);
    for (auto& x : v) x = wrong ? 0.0f : g(rng);
    return v;
  };
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"redrafter.rnn_w.weight", {IN, H}}, {"redrafter.rnn_u.weight", {H, H}}, {"redrafter.rnn_u.bias", {H}}};
  for (int j = 0; j < D; ++j) {
    shapes.push_back({"redrafter.block." + std::to_string(j) + ".weight", {E, E}});
    shapes.push_back({"redrafter.block." + std::to_string(j) + ".bias", {E}});
  }
  if (!drop_head) shapes.push_back({"redrafter.head.weight", {E, V}});
  keep.reserve(shapes.size());
  for (const auto& [n, ne] : shapes) {
    auto& v = add(ne);
    if (wrong && n == "redrafter.rnn_u.bias") std::fill(v.begin(), v.end(), 5.0f);
    if (wrong && n == "redrafter.head.weight") std::fill(v.begin() + IN, v.begin() + IN + H, 1.0f);
    REQUIRE(w.add_tensor(n, specd::GgmlType::F32, ne, {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4}));
  }
  const std::string path = dir + "/" + name;
  REQUIRE(w.write(path));
  return path;
}

const std::string& digest() {
  static const std::string d = [] {
    RuntimeFixture f;
    return std::string(f.rt.model_info().digest);
  }();
  return d;
}

// W or L 0: left out, so auto chooses it.
std::string opts(const std::string& drafter, int W, int L, const char* rule = "exact", int nodes = 0) {
  return "{\"drafter\": \"" + drafter + "\"" + (W > 0 ? ", \"W\": " + std::to_string(W) : "") +
         (L > 0 ? ", \"L\": " + std::to_string(L) : "") + ", \"accept\": \"" + rule +
         "\", \"nodes\": " + std::to_string(nodes) + "}";
}

std::string trained() {
  const std::string p = trained_model("stories260K-redrafter.gguf");
  REQUIRE_MESSAGE(!p.empty(), "no trained drafter: run scripts/train.sh redrafter --smoke (or scripts/test.sh)");
  return p;
}

}  // namespace

TEST_CASE("tree packing reproduces the reference vectors of §4.4") {
  const std::vector<int32_t> b0 = {91, 92, 93, 95, 91, 92, 94, 96, 91, 92, 93, 97};
  Tree a(3, 4, b0);
  CHECK(a.tree() == std::vector<int32_t>{0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 2});
  CHECK(std::vector<int32_t>(a.t.div, a.t.div + 3) == std::vector<int32_t>{0, 2, 3});
  CHECK(a.t.n == 7);
  CHECK(a.tok() == std::vector<int32_t>{91, 92, 93, 95, 94, 96, 97});
  CHECK(a.beam_pos() == std::vector<int32_t>{0, 1, 2, 3, 6, 7, 11});
  CHECK(a.unpacker() == std::vector<int32_t>{0, 1, 2, 3, 0, 1, 4, 5, 0, 1, 2, 6});
  check_tree_invariants(a.t, b0);
  const std::vector<int32_t> b1 = {93, 94, 95, 92, 93, 95, 96, 93, 93, 94, 97, 96};
  Tree b(3, 4, b1);
  CHECK(b.unpacker() == std::vector<int32_t>{0, 1, 2, 3, 0, 4, 5, 6, 0, 1, 7, 8});
  CHECK(b.t.n == 9);
  check_tree_invariants(b.t, b1);
  CHECK(rd_tree_child(&a.t, 1, 93) == 2);
  CHECK(rd_tree_child(&a.t, 1, 94) == 4);
  CHECK(rd_tree_child(&a.t, 1, 95) == -1);
}

TEST_CASE("tree packing: duplicates add nothing, last-token variants add one node each, invariants hold") {
  const int32_t W = 5, L = 4;
  std::vector<int32_t> same(W * L);
  for (int32_t i = 0; i < W; ++i)
    for (int32_t j = 0; j < L; ++j) same[static_cast<size_t>(i * L + j)] = 10 + j + (j == L - 1 ? i : 0);
  Tree t(W, L, same);
  CHECK(t.t.n == L + (W - 1));
  check_tree_invariants(t.t, same);
  std::vector<int32_t> dup = same;
  for (int32_t j = 0; j < L; ++j) dup[static_cast<size_t>(4 * L + j)] = dup[static_cast<size_t>(1 * L + j)];
  Tree d(W, L, dup);
  CHECK(d.t.n == L + (W - 2));
  CHECK(d.t.div[4] == L);
  check_tree_invariants(d.t, dup);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {  // random beams over a 3-token alphabet share many prefixes
    const int32_t w = 1 + static_cast<int32_t>(rng() % 8), l = 1 + static_cast<int32_t>(rng() % 6);
    std::vector<int32_t> beams(static_cast<size_t>(w * l));
    for (int32_t i = 0; i < w; ++i)
      for (int32_t j = 0; j < l; ++j) beams[static_cast<size_t>(i * l + j)] = j == 0 ? 5 : static_cast<int32_t>(rng() % 3);
    Tree r(w, l, beams);
    check_tree_invariants(r.t, beams);
  }
}

TEST_CASE("tree pruning keeps the likeliest subtree in packed order") {
  const std::vector<int32_t> b0 = {91, 92, 93, 95, 91, 92, 94, 96, 91, 92, 93, 97};
  Tree a(3, 4, b0);  // packed: 91 92 93 95 94 96 97 with parents -1 0 1 2 1 4 2
  const std::vector<float> score = {0.0f, -0.1f, -0.5f, -2.0f, -0.3f, -0.4f, -0.6f};
  std::vector<int32_t> scratch(7);
  CHECK(rd_tree_prune(&a.t, score.data(), 5, scratch.data()) == 5);  // drops 95 (-2.0) and 97 (-0.6)
  CHECK(a.tok() == std::vector<int32_t>{91, 92, 93, 94, 96});
  CHECK(std::vector<int32_t>(a.t.parent, a.t.parent + 5) == std::vector<int32_t>{-1, 0, 1, 1, 3});
  CHECK(std::vector<int32_t>(a.t.depth, a.t.depth + 5) == std::vector<int32_t>{0, 1, 2, 2, 3});
  CHECK(rd_tree_child(&a.t, 3, 96) == 4);
  Tree b(3, 4, b0);
  const std::vector<float> flat(7, 0.0f);  // all tied: the lowest indices, i.e. parents first
  CHECK(rd_tree_prune(&b.t, flat.data(), 3, scratch.data()) == 3);
  CHECK(b.tok() == std::vector<int32_t>{91, 92, 93});
  Tree c(3, 4, b0);
  CHECK(rd_tree_prune(&c.t, score.data(), 7, scratch.data()) == 7);  // nothing to prune
  CHECK(rd_tree_prune(&c.t, score.data(), 0, scratch.data()) == 1);  // the root always stays
  CHECK(c.t.parent[0] == -1);
}

TEST_CASE("beam selection keeps the W best cumulative scores with a deterministic tie-break") {
  const float vals[4] = {2.0f, 1.0f, 0.5f, -1.0f};
  float logq[4];
  rd_truncated_logq(vals, 4, logq);
  double z = 0;
  for (float x : logq) z += std::exp(static_cast<double>(x));
  CHECK(z == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(logq[0] - logq[1] == doctest::Approx(1.0));
  // Two beams with 3 candidates each; beam 1's score is lower.
  const float score[2] = {0.0f, -1.0f};
  const int32_t ids[6] = {7, 8, 9, 17, 18, 19};
  const float lq[6] = {-0.5f, -1.0f, -3.0f, -0.1f, -0.5f, -0.6f};
  int32_t parent[4], token[4], rank[4];
  float out[4];
  REQUIRE(rd_beam_select(2, 3, 4, score, ids, lq, parent, token, rank, out) == 4);
  CHECK(std::vector<int32_t>(token, token + 4) == std::vector<int32_t>{7, 8, 17, 18});  // -0.5, -1.0, -1.1, -1.5
  CHECK(std::vector<int32_t>(parent, parent + 4) == std::vector<int32_t>{0, 0, 1, 1});
  CHECK(out[2] == doctest::Approx(-1.1f));
  const float tie_lq[6] = {-1.0f, -2.0f, -3.0f, 0.0f, -1.0f, -2.0f};  // beam 0's -1 ties beam 1's -1
  REQUIRE(rd_beam_select(2, 3, 3, score, ids, tie_lq, parent, token, rank, out) == 3);
  CHECK(std::vector<int32_t>(token, token + 3) == std::vector<int32_t>{7, 17, 8});  // the lower parent first
  CHECK(rd_beam_select(1, 2, 4, score, ids, lq, parent, token, rank, out) == 2);     // fewer candidates than W
}

namespace {
// A host for rd_auto_choose alone: a nearly flat cost curve (a GPU's), no decoder cost measured.
double flat_step_cost(specd_host*, int32_t rows) { return rows > 0 ? 1.0 + 0.01 * (rows - 1) : 0.0; }
double no_decoder_cost(specd_seq*) { return 0.0; }
int note_nothing(specd_seq*, const char*) { return 0; }
specd_host_api auto_host(double (*step_cost)(specd_host*, int32_t)) {
  specd_host_api api{};
  api.step_cost = step_cost;
  api.seq_decoder_cost = no_decoder_cost;
  api.seq_note_setting = note_nothing;
  return api;
}
}  // namespace

TEST_CASE("redrafter auto: a width that lost once is measured again now and then, so the best one is found") {
  // A width's acceptance is learned only from its own steps. Here W=4 trees accept every draft and
  // narrower ones one, but W=4 starts behind (the drafter's prior cost of 20 beam steps): without the
  // exploring steps W=2 ran forever. Every RD_AUTO_EXPLORE tree steps the least recent width runs.
  const specd_host_api api = auto_host(flat_step_cost);
  rd_auto_seq a;
  rd_auto_init(&a);
  const int steps = 8 * RD_AUTO_EXPLORE;
  std::map<int32_t, int> first_half, second_half;
  for (int i = 0; i < steps; ++i) {
    int32_t W = 4, L = 6;
    rd_auto_choose(&a, &api, nullptr, nullptr, 1, 1, &W, &L);
    REQUIRE(L >= 2);  // speculation pays on this curve: never a plain step
    ++(i < steps / 2 ? first_half : second_half)[W];
    rd_auto_record(&a, W == 4 ? L - 1 : 1);
  }
  CHECK(first_half[1] > 0);
  CHECK(first_half[2] > 0);
  CHECK(first_half[4] > 0);
  // once found, W=4 runs but for the exploring steps (one in RD_AUTO_EXPLORE)
  CHECK(second_half[4] >= steps / 2 - steps / 2 / RD_AUTO_EXPLORE);
  CHECK(second_half[1] + second_half[2] >= 2);
}

namespace {
double steep_step_cost(specd_host*, int32_t rows) { return rows > 0 ? 1.0 + 0.15 * (rows - 1) : 0.0; }

// Steps of rd_auto_choose where W=4 trees accept every draft and narrower ones two; each packed
// tree has `shared` ? one chain (every beam the same) : no shared node. Returns the steps per width
// in the second half.
std::map<int32_t, int> run_packed(bool shared) {
  const specd_host_api api = auto_host(steep_step_cost);
  rd_auto_seq a;
  rd_auto_init(&a);
  const int steps = 8 * RD_AUTO_EXPLORE;
  std::map<int32_t, int> second_half;
  for (int i = 0; i < steps; ++i) {
    int32_t W = 4, L = 6;
    rd_auto_choose(&a, &api, nullptr, nullptr, 1, 1, &W, &L);
    if (L < 2) continue;
    rd_auto_note_tree(&a, shared ? L : 1 + W * (L - 1));
    if (i >= steps / 2) ++second_half[W];
    rd_auto_record(&a, W == 4 ? L - 1 : std::min<int32_t>(2, L - 1));
  }
  return second_half;
}
}  // namespace

TEST_CASE("redrafter auto: a tree is priced at the rows its packing keeps, not at W(L-1) drafts") {
  // On a steep cost curve a W=4, L=6 tree of 21 rows does not pay for its 6 tokens, but one whose
  // beams share their prefixes (6 rows) does. Priced at 1 + W(L-1) rows, it never ran.
  const auto full = run_packed(false), packed = run_packed(true);
  const int half = 4 * RD_AUTO_EXPLORE;
  CHECK(packed.count(4));
  if (packed.count(4)) CHECK(packed.at(4) >= half - half / RD_AUTO_EXPLORE - 1);
  CHECK((full.count(4) ? full.at(4) : 0) <= half / RD_AUTO_EXPLORE + 1);
}

TEST_CASE("redrafter auto: a sequence starts from the statistics an earlier one left (capped), or from the prior") {
  rd_auto_seq done;
  rd_auto_init(&done);
  for (int i = 0; i < 100; ++i) {
    done.last_width = 1, done.last_depth = 5, done.last_beams = 2;
    done.width_seen[1] = ++done.tree_total;
    rd_auto_note_tree(&done, 8);
    rd_auto_record(&done, i % 4 == 0 ? 1 : 5);
  }
  done.draft_cost = 0.02, done.draft_measured = 1;
  rd_auto_hist hist{};  // as the host hands it out: zeroed
  rd_auto_seq fresh, prior;
  rd_auto_init(&fresh);
  rd_auto_init(&prior);
  rd_auto_seed(&fresh, &hist);  // nothing kept yet
  rd_auto_seed(&fresh, nullptr);
  CHECK(std::memcmp(&fresh, &prior, sizeof fresh) == 0);
  rd_auto_seq plain_only;
  rd_auto_init(&plain_only);
  rd_auto_keep(&hist, &plain_only);  // no tree step: nothing worth keeping
  CHECK(hist.version == 0);
  rd_auto_keep(&hist, &done);
  CHECK(hist.version == RD_AUTO_HIST_VERSION);
  rd_auto_seed(&fresh, &hist);
  CHECK(fresh.acc[1].tries[1] == doctest::Approx(RD_AUTO_SEED_STEPS));
  CHECK(fresh.acc[1].hits[1] / fresh.acc[1].tries[1] == doctest::Approx(done.acc[1].hits[1] / done.acc[1].tries[1]));
  CHECK(fresh.acc[1].tries[3] / fresh.acc[1].tries[1] == doctest::Approx(done.acc[1].tries[3] / done.acc[1].tries[1]));
  CHECK(fresh.acc[0].tries[1] == 0.0);  // a width never run stays at its prior
  CHECK(fresh.draft_cost == 0.02);
  CHECK(fresh.fill[1] == doctest::Approx(done.fill[1]));
  CHECK(fresh.tree_total == 100);  // the exploring steps count on across requests
  CHECK(fresh.last_width == -1);
  hist.size = 1;  // a block another build of the decoder laid out
  rd_auto_seq other;
  rd_auto_init(&other);
  rd_auto_seed(&other, &hist);
  CHECK(std::memcmp(&other, &prior, sizeof other) == 0);
}

TEST_CASE("redrafter auto keeps what a request learned in the host's decoder memory for the next one") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const auto r = f.run(request(stories_model().tokenizer().encode("Once upon a time", true), 96, "redrafter"));
  REQUIRE(r.finish_reason != SPECD_FINISH_ERROR);
  CHECK(!r.settings.empty());  // auto ran
  const auto* hist = static_cast<const rd_auto_hist*>(f.rt.decoder_memory("redrafter", sizeof(rd_auto_hist)));
  REQUIRE(hist != nullptr);
  CHECK(hist->version == RD_AUTO_HIST_VERSION);
  CHECK(hist->seq.tree_total > 0);
  // A second request counts its tree steps on from the first's (how many it runs on this small
  // model depends on the measured costs: auto may keep to plain steps, then the block stays as it was).
  const int64_t after_one = hist->seq.tree_total;
  f.run(request(stories_model().tokenizer().encode("Once upon a time", true), 96, "redrafter"));
  CHECK(hist->version == RD_AUTO_HIST_VERSION);
  CHECK(hist->seq.tree_total >= after_one);
}

TEST_CASE("redrafter greedy equals ar greedy on 50 prompts, with the trained and with random drafters") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string dir = side_dir();
  const std::string random_drafter = write_drafter(dir, "random11.gguf", digest(), 11);
  const std::string model = trained();
  const auto ps = lossless_prompts();
  REQUIRE(ps.size() >= 50);
  struct Shape {
    int W, L, nodes;
  };
  // 0: auto (W up to 4, L up to 6).
  const std::vector<Shape> shapes = {{1, 2, 0}, {4, 5, 0}, {0, 0, 0}, {8, 6, 0}, {2, 4, 0}, {16, 3, 0},
                                     {4, 6, 6}, {0, 0, 0}, {8, 5, 3}, {2, 0, 0}, {0, 3, 0}};
  int checked = 0;
  double tpf_trained = 0, tpf_random = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const int32_t max_tokens = std::vector<int32_t>{17, 64, 120}[i % 3];
    auto ar = f.run(request(ps[i], max_tokens, "ar"));
    const auto [W, L, nodes] = shapes[i % shapes.size()];
    for (const std::string& d : {model, random_drafter}) {
      auto rd = f.run(request(ps[i], max_tokens, "redrafter", opts(d, W, L, "exact", nodes)));
      CHECK_MESSAGE(rd.tokens == ar.tokens, "prompt " << i << " W " << W << " L " << L << " drafter " << d);
      CHECK(rd.finish_reason == ar.finish_reason);
      const double tpf = rd.tokens_per_forward();
      if (rd.steps > rd.prefill_steps) {
        CHECK(tpf >= 1.0);
        CHECK(tpf <= (L > 0 ? L : 6));
      }
      (d == model ? tpf_trained : tpf_random) += tpf;
      ++checked;
    }
  }
  tpf_trained /= static_cast<double>(ps.size());
  tpf_random /= static_cast<double>(ps.size());
  MESSAGE(checked << " redrafter runs equal ar; mean TPF trained " << tpf_trained << ", random " << tpf_random);
  CHECK(tpf_trained > tpf_random);  // a trained drafter is better than chance (the smoke one too)
  CHECK(tpf_trained > 1.2);
}

TEST_CASE("a drafter that is always wrong gives exactly one token per step, still equal to ar") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string dir = side_dir();
  const std::string wrong = write_drafter(dir, "wrong.gguf", digest(), 3, true);
  for (size_t n : {size_t{0}, size_t{40}}) {
    std::vector<int32_t> p = {1};
    p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + static_cast<std::ptrdiff_t>(n));
    auto ar = f.run(request(p, 50, "ar"));
    auto rd = f.run(request(p, 50, "redrafter", opts(wrong, 1, 5)));
    CHECK(rd.tokens == ar.tokens);
    CHECK(rd.tokens_per_forward() == doctest::Approx(1.0));
    CHECK(rd.steps == ar.steps);
  }
}

TEST_CASE("redrafter sampling with the exact rule keeps ar's law and, with the same seed, ar's stream") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string model = trained();
  const auto prompt = stories_model().tokenizer().encode("Once upon a time, there was a little girl", true);
  const int n_seeds = 600;
  const size_t pos = 3;
  std::map<int32_t, int> count_ar, count_rd;
  int identical = 0;
  for (int seed = 0; seed < n_seeds; ++seed) {
    auto req = request(prompt, 6, "ar");
    req.sampling.temperature = 1.0f;
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u;
    req.stop_tokens.clear();
    auto a = f.run(req);
    req.decoder = "redrafter";
    req.options_json = seed % 2 ? opts(model, 0, 0) : opts(model, 4, 5);  // auto on odd seeds
    auto same = f.run(req);
    identical += same.tokens == a.tokens;
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u + 1;
    auto r = f.run(req);
    REQUIRE(a.tokens.size() > pos);
    REQUIRE(r.tokens.size() > pos);
    ++count_ar[a.tokens[pos]];
    ++count_rd[r.tokens[pos]];
  }
  const ChiSquare c = two_sample_chi_square(count_ar, count_rd);
  REQUIRE(c.dof >= 2);
  MESSAGE("chi2 = " << c.chi2 << " on " << c.dof << " dof (critical " << c.critical << "); same-seed identical "
                    << identical << "/" << n_seeds);
  CHECK(c.chi2 < c.critical);
  CHECK(identical == n_seeds);  // each emitted token is one sample() of ar's logits, in ar's order
}

TEST_CASE("the reference-compatible rule is greedy-identical and samples valid tokens") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string model = trained();
  for (size_t n : {size_t{0}, size_t{25}, size_t{70}}) {
    std::vector<int32_t> p = {1};
    p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + static_cast<std::ptrdiff_t>(n));
    auto ar = f.run(request(p, 60, "ar"));
    auto rd = f.run(request(p, 60, "redrafter", opts(model, 4, 5, "reference")));
    CHECK(rd.tokens == ar.tokens);
    auto req = request(p, 60, "redrafter", opts(model, 4, 5, "reference"));
    req.sampling.temperature = 0.8f;
    req.sampling.seed = 5 + n;
    auto s = f.run(req);
    CHECK(s.finish_reason != SPECD_FINISH_ERROR);
    for (int32_t t : s.tokens) CHECK((t >= 0 && t < 512));
  }
}

TEST_CASE("redrafter sequences with different W and L in one merged forward equal their solo runs") {
  const std::string model = trained();
  struct Job {
    int W, L;
    size_t prefix;
  };
  const std::vector<Job> jobs = {{1, 2, 0}, {4, 5, 30}, {8, 6, 5}, {2, 3, 99}, {16, 4, 60}};
  auto prompt = [](size_t n) {
    std::vector<int32_t> p = {1};
    p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + static_cast<std::ptrdiff_t>(n));
    return p;
  };
  std::vector<daemon::DecodeResult> solo;
  {
    RuntimeFixture f({}, {"ar", "redrafter"});
    for (const auto& j : jobs) solo.push_back(f.run(request(prompt(j.prefix), 48, "redrafter", opts(model, j.W, j.L))));
  }
  RuntimeFixture f({}, {"ar", "redrafter"});
  std::vector<daemon::DecodeResult> together(jobs.size());
  struct Ctx {
    std::vector<daemon::DecodeResult>* out;
    int done = 0;
    int64_t first = 0;
  } ctx{&together};
  daemon::DecodeCallbacks cb;
  cb.on_finished = [](int64_t id, const daemon::DecodeResult& r, void* u) {
    auto* c = static_cast<Ctx*>(u);
    (*c->out)[static_cast<size_t>(id - c->first)] = r;
    ++c->done;
  };
  cb.user = &ctx;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto id = f.rt.submit(request(prompt(jobs[i].prefix), 48, "redrafter", opts(model, jobs[i].W, jobs[i].L)), cb);
    REQUIRE(id.has_value());
    if (i == 0) ctx.first = *id;
  }
  while (ctx.done < static_cast<int>(jobs.size())) f.rt.step();
  for (size_t i = 0; i < jobs.size(); ++i) {
    CHECK_MESSAGE(together[i].tokens == solo[i].tokens, "W " << jobs[i].W << " L " << jobs[i].L);
    CHECK(together[i].steps == solo[i].steps);
  }
}

TEST_CASE("redrafter finds its drafter beside the model or in the training cache") {
  // The model is a copy in a directory of its own: the shared models directory holds a trained drafter
  // beside stories260K.gguf, which would answer before the cache does.
  const std::string dir = temp_dir();
  ScopedEnv cache("SPECD_CACHE", dir);  // before the runtime: its default side-file dirs come from it
  std::filesystem::create_directories(dir + "/alone");
  std::filesystem::copy_file(model_path("stories260K.gguf"), dir + "/alone/stories260K.gguf");
  auto model = engine::Model::load(dir + "/alone/stories260K.gguf");
  REQUIRE(model.has_value());
  daemon::PluginRegistry reg;
  RuntimeFixture::load(reg, {"ar", "redrafter"});
  kernels::ThreadPool pool(2);
  daemon::DecodeRuntime rt(**model, reg, pool);
  auto run = [&](const daemon::DecodeRequest& req) {
    auto r = rt.run(req);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return std::move(r.value());
  };

  std::filesystem::create_directories(dir + "/models");
  write_drafter(dir + "/models", "stories260K-redrafter.gguf", digest(), 5);
  auto ar = run(request({1}, 30, "ar"));
  auto rd = run(request({1}, 30, "redrafter", R"({"W": 2, "L": 3})"));
  CHECK(rd.tokens == ar.tokens);

  // Beside the model wins over the cache.
  std::filesystem::copy_file(dir + "/models/stories260K-redrafter.gguf", dir + "/alone/stories260K-redrafter.gguf");
  cache.set(dir + "/nothing");
  auto beside = run(request({1}, 30, "redrafter", R"({"W": 2, "L": 3})"));
  CHECK(beside.tokens == ar.tokens);

  std::filesystem::remove(dir + "/alone/stories260K-redrafter.gguf");
  auto r = rt.submit(request({1}, 30, "redrafter"), {});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == SPECD_E_IO);
  CHECK_MESSAGE(r.error().message.find("no drafter") != std::string::npos, r.error().message);
}

TEST_CASE("bad drafters and options get named errors and the runtime keeps serving") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string dir = side_dir();
  const std::string good = write_drafter(dir, "good.gguf", digest(), 1);
  const std::string other = write_drafter(dir, "other.gguf", "0123456789abcdef", 1);
  const std::string headless = write_drafter(dir, "headless.gguf", digest(), 1, false, 5, true);
  write_file(dir + "/garbage.gguf", {'G', 'G', 'U', 'F', 3, 0, 0});
  auto expect = [&](const std::string& o, int code, const char* phrase) {
    auto r = f.rt.submit(request({1}, 10, "redrafter", o), {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(phrase) != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find("redrafter") != std::string::npos, r.error().message);
  };
  expect(opts(other, 4, 5), SPECD_E_BAD_MODEL, "trained for model 0123456789abcdef");
  expect(opts(headless, 4, 5), SPECD_E_BAD_MODEL, "redrafter.head.weight is missing");
  expect(opts(dir + "/garbage.gguf", 4, 5), SPECD_E_BAD_MODEL, "garbage.gguf");
  expect(opts(dir + "/absent.gguf", 4, 5), SPECD_E_IO, "absent.gguf");
  expect(R"({"drafter": ")" + good + R"(", "W": 0, "L": 5})", SPECD_E_BAD_OPTION, "option 'W'");  // 0 is not auto
  expect(opts(good, 33, 5), SPECD_E_BAD_OPTION, "option 'W'");
  expect(opts(good, 4, 1), SPECD_E_BAD_OPTION, "option 'L'");
  expect(opts(good, 4, 7), SPECD_E_BAD_OPTION, "trained for at most 5");
  expect(opts(good, 4, 5, "typical"), SPECD_E_BAD_OPTION, "exact or reference");
  expect(opts(good, 4, 5, "reference", 4), SPECD_E_BAD_OPTION, "option 'nodes'");
  expect(opts(good, 4, 5, "exact", -1), SPECD_E_BAD_OPTION, "option 'nodes'");
  expect(R"({"drafter": ")" + good + R"(", "beams": 3})", SPECD_E_BAD_OPTION, "unknown option 'beams'");
  CHECK(f.rt.idle());
  auto ok = f.run(request({1}, 20, "redrafter", opts(good, 4, 5)));
  CHECK(ok.tokens == std::vector<int32_t>(golden_ids().begin(), golden_ids().begin() + 20));
}

TEST_CASE("a drafter carried over to an inflated model drafts as on the small model (BENCHMARKS.md §2.2)") {
  const std::string dir = side_dir(), drafter = trained();  // the small model's runtime may attach big's drafter
  const std::string big = dir + "/big.gguf", big_drafter = dir + "/big-redrafter.gguf";
  std::string log;
  const int rc = run_command(build_root() + "/tools/specd-inflate --model '" + model_path("stories260K.gguf") +
                                 "' --out '" + big + "' --dim 256 --layers 6 --heads 32 --kv-heads 4 --ffn 512" +
                                 " --type f32 --drafter '" + drafter + "' --drafter-out '" + big_drafter + "' 2>&1",
                             &log);
  REQUIRE_MESSAGE(rc == 0, log);
  auto big_model = engine::Model::load(big);
  REQUIRE(big_model.has_value());
  daemon::PluginRegistry reg;
  REQUIRE(reg.load_file(plugin_path("redrafter")).has_value());
  kernels::ThreadPool pool(2);
  daemon::DecodeRuntime big_rt(**big_model, reg, pool);
  RuntimeFixture small({}, {"redrafter"});
  int same_steps = 0;
  for (size_t n : {size_t{0}, size_t{20}, size_t{50}}) {
    std::vector<int32_t> p = {1};
    p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + static_cast<std::ptrdiff_t>(n));
    auto a = small.run(request(p, 80, "redrafter", opts(drafter, 4, 5)));
    auto b = big_rt.run(request(p, 80, "redrafter", opts(big_drafter, 4, 5)));
    REQUIRE(b.has_value());
    CHECK(b->tokens == a.tokens);
    same_steps += b->steps == a.steps;
  }
  CHECK(same_steps >= 2);  // float rounding may flip a near-tie between beams, rarely
  auto wrong = small.rt.submit(request({1}, 5, "redrafter", opts(big_drafter, 4, 5)), {});
  REQUIRE_FALSE(wrong.has_value());  // the big model's drafter is refused by the small model
  CHECK(wrong.error().code == SPECD_E_BAD_MODEL);
}

TEST_CASE("steady-state redrafter steps allocate nothing (drafter ops and tree included; fixed and auto)") {
  const std::string dir = side_dir();
  const std::string drafter = write_drafter(dir, "random21.gguf", digest(), 21);
  for (const auto& [W, L] : {std::pair{4, 5}, std::pair{0, 0}}) {
    CAPTURE(W);
    RuntimeFixture f({}, {"redrafter"});
    std::vector<int32_t> p = {1};
    p.insert(p.end(), golden_ids().begin(), golden_ids().begin() + 20);
    auto id = f.rt.submit(request(p, 400, "redrafter", opts(drafter, W, L)), {});
    REQUIRE(id.has_value());
    for (int i = 0; i < 20; ++i) f.rt.step();
    const long before = allocation_count();
    for (int i = 0; i < 40; ++i) f.rt.step();
    CHECK(allocation_count() - before == 0);
    REQUIRE(f.rt.active() == 1);
  }
}

TEST_CASE("drafter paths outside the side-file dirs are ACCESS, never echo the file, and the runtime keeps serving") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string outside = temp_dir();
  const std::string real_drafter = write_drafter(outside, "outside.gguf", digest(), 1);  // a valid drafter, elsewhere
  std::filesystem::create_symlink(real_drafter, side_dir() + "/escape.gguf");
  for (const std::string& p : {std::string("/etc/passwd"), std::string("/etc/shadow"), real_drafter, outside + "/absent.gguf",
                               side_dir() + "/escape.gguf", side_dir() + "/../" +
                                   std::filesystem::path(outside).filename().string() + "/outside.gguf"}) {
    CAPTURE(p);
    auto r = f.rt.submit(request({1}, 10, "redrafter", opts(p, 4, 5)), {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == SPECD_E_ACCESS);
    CHECK_MESSAGE(r.error().message.find("option 'drafter'") != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find(p) != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find("root") == std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find("magic") == std::string::npos, r.error().message);
  }
  CHECK(f.rt.idle());
  auto ok = f.run(request({1}, 20, "redrafter", opts(trained(), 4, 5)));  // the trained drafter in the cache still is
  CHECK(ok.tokens == std::vector<int32_t>(golden_ids().begin(), golden_ids().begin() + 20));
}

TEST_CASE("a drafter truncated and rewritten under a running request: the run finishes unchanged, the next is refused") {
  RuntimeFixture f({}, {"ar", "redrafter"});
  const std::string p = write_drafter(side_dir(), "truncated.gguf", digest(), 7);
  std::vector<int32_t> prompt = {1};
  prompt.insert(prompt.end(), golden_ids().begin(), golden_ids().begin() + 10);
  const auto ar = f.run(request(prompt, 120, "ar"));
  daemon::DecodeResult got;
  bool done = false;
  daemon::DecodeCallbacks cb;
  cb.on_finished = [](int64_t, const daemon::DecodeResult& r, void* u) {
    auto* c = static_cast<std::pair<daemon::DecodeResult*, bool*>*>(u);
    *c->first = r;
    *c->second = true;
  };
  std::pair<daemon::DecodeResult*, bool*> ctx{&got, &done};
  cb.user = &ctx;
  REQUIRE(f.rt.submit(request(prompt, 120, "redrafter", opts(p, 4, 5)), cb).has_value());
  for (int i = 0; i < 3; ++i) f.rt.step();
  std::filesystem::resize_file(p, 0);  // with a mapping, the next drafter step died of SIGBUS
  write_file(p, {'G', 'G', 'U', 'F', 3, 0, 0, 0});
  while (!done) f.rt.step();
  CHECK(got.finish_reason != SPECD_FINISH_ERROR);
  CHECK(got.tokens == ar.tokens);
  auto next = f.rt.submit(request(prompt, 10, "redrafter", opts(p, 4, 5)), {});
  REQUIRE_FALSE(next.has_value());
  CHECK(next.error().code == SPECD_E_BAD_MODEL);
  CHECK(f.run(request({1}, 5, "ar")).tokens.size() == 5);
}
