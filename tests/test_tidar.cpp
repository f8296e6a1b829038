// TiDAR: specd-add-mask, and the tidar decoder's invariants (methods/tidar.md §10) against our engine.
//
// Models: stories260K with an untrained MASK token (made here by specd-add-mask; its drafts are
// nearly random, so verification mostly rejects) and, when scripts/train.sh made it, the trained
// stories260K-tidar.gguf (whose drafts are accepted often). Checked: the in-flight pattern the
// plugin sends (§2.2 positions, §2.3 visibility) equals the one built from the spec's definition;
// causal rows equal a plain causal forward and each group G_i equals the slow "prefix + c[0..i) +
// k masks" forward (I1, I2); the KV after every step equals a fresh prefill of the committed tokens
// (I7); greedy tidar with w = 1 equals ar on ≥ 50 prompts (I4) and, for w < 1, the slow per-token
// reference argmax(w·AR + (1-w)·D_0) (I5); 1 ≤ tokens per step ≤ k (I6); sampling keeps ar's law
// (I9); bad options and models give named errors.
#include "engine/gguf_reader.h"
#include "engine/sampler.h"
#include "tests/lossless_prompts.h"
#include "plugins/common/spec_auto.h"
#include "tests/runtime_fixture.h"

#include <cmath>
#include <map>
#include <memory>

using namespace specd;
using namespace specd::test;

namespace {

// Sanitized (debug, -O0) builds run the engine tens of times slower: they check the same invariants
// on shorter generations and fewer seeds (the prompt count stays >= 50).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kLight = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kLight = true;
#else
constexpr bool kLight = false;
#endif
#else
constexpr bool kLight = false;
#endif
constexpr int32_t light(int32_t full, int32_t sanitized) { return kLight ? sanitized : full; }

// stories260K with a MASK token (vocab 513, mask 512, specd.tidar.block_len 8), made once.
const std::string& mask_model_path() {
  static const std::string path = [] {
    const std::string out = temp_dir() + "/stories260K-mask.gguf";
    std::string log;
    const std::string cmd = build_root() + "/tools/specd-add-mask --model " + model_path("stories260K.gguf") +
                            " --out " + out + " 2>&1";
    REQUIRE_MESSAGE(run_command(cmd, &log) == 0, log);
    return out;
  }();
  return path;
}

const engine::Model& load_model(const std::string& path) {
  static std::map<std::string, std::unique_ptr<engine::Model>> cache;
  auto& m = cache[path];
  if (!m) {
    auto r = engine::Model::load(path);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    m = std::move(r.value());
  }
  return *m;
}

// The trained model, or a failure telling how to make it.
std::string trained_path() {
  const std::string p = trained_model("stories260K-tidar.gguf");
  if (p.empty())
    FAIL("no trained TiDAR model (stories260K-tidar.gguf in $SPECD_MODELS, ../shared/models, $SPECD_CACHE/models or models/smoke): "
         "run `scripts/train.sh tidar --smoke` (or `scripts/train.sh tidar` for the full one)");
  return p;
}

// A runtime over model with the ar and tidar decoders.
struct TidarRuntime {
  daemon::PluginRegistry plugins;
  kernels::ThreadPool pool{2};
  daemon::DecodeRuntime rt;
  explicit TidarRuntime(const engine::Model& model)
      : rt(model, RuntimeFixture::load(plugins, {"ar", "tidar"}), pool, daemon::RuntimeLimits{}) {}
  daemon::DecodeResult run(const daemon::DecodeRequest& req) {
    auto r = rt.run(req);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return std::move(r.value());
  }
};

// A separate engine over model for slow reference forwards.
struct Ref {
  const engine::Model& model;
  kernels::ThreadPool pool{2};
  engine::KvCache kv;
  engine::Forward fwd;
  engine::Batch batch{64};
  explicit Ref(const engine::Model& m)
      : model(m), kv(m.config().n_layers, m.config().kv_dim(), m.config().ctx_len), fwd(m, kv, pool) {}

  // A fresh sequence holding tokens (committed, causal).
  engine::SeqId prefix(const std::vector<int32_t>& tokens) {
    auto s = kv.create_seq();
    REQUIRE(s.has_value());
    if (tokens.empty()) return *s;
    batch.clear();
    std::vector<int32_t> rows;
    for (size_t i = 0; i < tokens.size(); ++i)
      rows.push_back(batch.add_causal(*s, tokens[i], static_cast<int32_t>(i), 0u));
    REQUIRE(fwd.run(batch).has_value());
    REQUIRE(fwd.commit(*s, rows).has_value());
    return *s;
  }
  // Over seq's committed prefix: causal rows c, then n_masks MASK rows seeing c and each other.
  // Returns the logits of every row.
  std::vector<std::vector<float>> run(engine::SeqId seq, const std::vector<int32_t>& c, int32_t n_masks) {
    batch.clear();
    const int32_t P = kv.length(seq);
    for (size_t a = 0; a < c.size(); ++a)
      batch.add_causal(seq, c[a], P + static_cast<int32_t>(a), engine::ROW_WANT_LOGITS);
    const int32_t n_c = static_cast<int32_t>(c.size());
    for (int32_t m = 0; m < n_masks; ++m) batch.add(seq, model.config().mask, P + n_c + m, engine::ROW_WANT_LOGITS);
    for (int32_t r = n_c; r < n_c + n_masks; ++r)
      for (int32_t v = 0; v < n_c + n_masks; ++v)
        if (v != r) batch.see(r, v);
    REQUIRE(fwd.run(batch).has_value());
    std::vector<std::vector<float>> out;
    for (int32_t r = 0; r < batch.size(); ++r) {
      auto l = fwd.logits(batch.row(r).out_index);
      out.emplace_back(l.begin(), l.end());
    }
    return out;
  }
};

// The §2.3 visibility between in-flight rows r (query) and v (key) of a k-block, built directly.
bool spec_visible(int32_t k, int32_t r, int32_t v) {
  if (r == v) return true;
  if (r < k) return v < r;  // C_r sees C_0..C_{r-1}, no masks
  const int32_t i = (r - k) / k + 1;
  if (v < k) return v < i;  // G_i sees c[0..i)
  return (v - k) / k + 1 == i;  // and its own group
}
int32_t spec_pos(int32_t k, int32_t r) { return r < k ? r : (r - k) / k + 1 + (r - k) % k; }

struct Collected {
  std::vector<int32_t> tokens;
};
void collect(int64_t, const int32_t* t, int32_t n, void* u) {
  auto* c = static_cast<Collected*>(u);
  c->tokens.insert(c->tokens.end(), t, t + n);
}

// Step one tidar request by hand; after every decode step check the pattern, the logits of causal
// rows and groups against slow forwards, and the KV against a fresh prefill. Returns decode steps.
int check_steps(const engine::Model& model, const std::vector<int32_t>& prompt, int32_t k, int32_t max_tokens,
                float tol) {
  TidarRuntime f(model);
  Ref ref(model);
  Collected col;
  col.tokens = prompt;
  daemon::DecodeCallbacks cb;
  bool done = false;
  struct Both {
    Collected* c;
    bool* done;
  } both{&col, &done};
  cb.user = &both;
  cb.on_tokens = [](int64_t id, const int32_t* t, int32_t n, std::string_view, void* u) { collect(id, t, n, static_cast<Both*>(u)->c); };
  cb.on_finished = [](int64_t, const daemon::DecodeResult& r, void* u) {
    *static_cast<Both*>(u)->done = true;
    CHECK_MESSAGE(r.finish_reason != SPECD_FINISH_ERROR, r.error.message);
  };
  auto req = request(prompt, max_tokens, "tidar", R"({"k": ")" + std::to_string(k) + R"("})");
  req.stop_tokens.clear();
  REQUIRE(f.rt.submit(req, cb).has_value());
  engine::SeqId kv_seq = -1;
  for (engine::SeqId s = 0; s < 64; ++s)
    if (f.rt.kv().valid(s)) kv_seq = s;
  REQUIRE(kv_seq >= 0);
  const int32_t q = k + k * k;
  int decode_steps = 0;
  bool first = true;
  while (!done) {
    const size_t before = col.tokens.size();
    f.rt.step();
    const engine::Batch& b = f.rt.batch();
    if (first) {  // §2.6: the prompt causal, then k masks at L.. seeing the prompt and each other
      first = false;
      const int32_t L = static_cast<int32_t>(prompt.size());
      REQUIRE(b.size() == L + k);
      int bad = 0;
      for (int32_t r = 0; r < L + k; ++r) {
        bad += b.row(r).pos != r;
        bad += b.row(r).token != (r < L ? prompt[static_cast<size_t>(r)] : model.config().mask);
        for (int32_t v = 0; v < L + k; ++v) bad += b.visible(r, v) != (r < L ? v <= r : true);
      }
      CHECK_MESSAGE(bad == 0, "prefill layout differs from §2.6 in " << bad << " places");
    } else if (b.size() == q) {
      ++decode_steps;
      const int32_t P = b.row(0).pos;
      REQUIRE(static_cast<size_t>(P) + 1 <= before);
      // pattern (§2.2, §2.3)
      std::vector<int32_t> c;
      int bad = 0;
      for (int32_t r = 0; r < q; ++r) {
        bad += b.row(r).pos != P + spec_pos(k, r);
        if (r < k) c.push_back(b.row(r).token);
        else bad += b.row(r).token != model.config().mask;
        for (int32_t v = 0; v < q; ++v) bad += b.visible(r, v) != spec_visible(k, r, v);
      }
      REQUIRE_MESSAGE(bad == 0, "decode layout differs from §2.2/§2.3 in " << bad << " places");
      CHECK(c[0] == col.tokens[before - 1]);
      CHECK(P == static_cast<int32_t>(before) - 1);
      // logits against slow forwards (I1, I2)
      const std::vector<int32_t> pre(col.tokens.begin(), col.tokens.begin() + P);
      const engine::SeqId s = ref.prefix(pre);
      auto causal = ref.run(s, c, 0);
      for (int32_t a = 0; a < k; ++a)
        CHECK(max_abs_diff(f.rt.forward().logits(b.row(a).out_index), causal[static_cast<size_t>(a)]) < tol);
      for (int32_t i = 1; i <= k; ++i) {
        auto g = ref.run(s, std::vector<int32_t>(c.begin(), c.begin() + i), k);
        for (int32_t m = 0; m < k; ++m)
          CHECK(max_abs_diff(f.rt.forward().logits(b.row(k + (i - 1) * k + m).out_index),
                             g[static_cast<size_t>(i + m)]) < tol);
      }
      ref.kv.free_seq(s);
      // 1 ≤ j ≤ k
      const size_t j = col.tokens.size() - before;
      CHECK(j >= 1);
      CHECK(j <= static_cast<size_t>(k));
    }
    if (done) break;
    // KV holds exactly the committed tokens but the last (I7), equal to a fresh prefill.
    const int32_t len = f.rt.kv().length(kv_seq);
    REQUIRE(len == static_cast<int32_t>(col.tokens.size()) - 1);
    const engine::SeqId s = ref.prefix(std::vector<int32_t>(col.tokens.begin(), col.tokens.end() - 1));
    float worst = 0;
    const int32_t kvd = model.config().kv_dim();
    std::vector<float> k1(static_cast<size_t>(kvd)), v1(k1), k2(k1), v2(k1);
    for (int32_t l = 0; l < model.config().n_layers; ++l)
      for (int32_t p = 0; p < len; ++p) {
        REQUIRE(f.rt.forward().read_kv(kv_seq, l, p, k1.data(), v1.data()).has_value());
        REQUIRE(ref.fwd.read_kv(s, l, p, k2.data(), v2.data()).has_value());
        worst = std::max(worst, max_abs_diff(k1, k2));
        worst = std::max(worst, max_abs_diff(v1, v2));
      }
    CHECK(worst < tol);
    ref.kv.free_seq(s);
  }
  return decode_steps;
}

// The options for k, where k = 0 means none: `auto` (the default), which may use up to 16.
std::string k_option(int32_t k) {
  if (k <= 0) return {};
  std::string o = R"("k": ")";
  o += std::to_string(k);
  o += R"(", )";
  return o;
}
int32_t k_bound(int32_t k) { return k > 0 ? k : 16; }

// Greedy tidar (w = 1) equals ar on every prompt, for each k (0: auto); returns the mean TPF at the first k.
double check_greedy_equals_ar(const engine::Model& model, const std::vector<int32_t>& ks, size_t n_prompts) {
  TidarRuntime f(model);
  const auto ps = lossless_prompts();
  REQUIRE(ps.size() >= n_prompts);
  double tpf_sum = 0;
  int runs = 0;
  for (size_t i = 0; i < n_prompts; ++i) {
    const int32_t max_tokens = kLight ? std::vector<int32_t>{6, 10, 14}[i % 3] : std::vector<int32_t>{17, 32, 48}[i % 3];
    auto ar = f.run(request(ps[i], max_tokens, "ar"));
    REQUIRE_MESSAGE(ar.finish_reason != SPECD_FINISH_ERROR, ar.error.message);
    for (int32_t k : ks) {
      if (k != ks[0] && i % light(3, 10) != 0) continue;  // the other k on some of the prompts (run time)
      std::string opts = "{";
      opts += k_option(k);
      opts += R"("w": "1"})";
      auto td = f.run(request(ps[i], max_tokens, "tidar", opts));
      CHECK_MESSAGE(td.tokens == ar.tokens, "prompt " << i << " k " << k);
      CHECK(td.finish_reason == ar.finish_reason);
      for (size_t n = static_cast<size_t>(k_bound(k)) + 1; n < td.emitted_hist.size(); ++n) CHECK(td.emitted_hist[n] == 0);
      if (!td.emitted_hist.empty()) CHECK(td.emitted_hist[0] == 0);
      const double tpf = td.tokens_per_forward();
      if (td.steps > td.prefill_steps) {
        CHECK(tpf >= 1.0);
        CHECK(tpf <= k_bound(k));
        if (k == 1) CHECK(tpf == 1.0);
      }
      if (k == ks[0]) tpf_sum += tpf;
      ++runs;
    }
  }
  MESSAGE(runs << " tidar runs equal ar; mean TPF at k " << ks[0] << ": " << tpf_sum / static_cast<double>(n_prompts));
  return tpf_sum / static_cast<double>(n_prompts);
}

// Greedy tidar with w < 1 equals the slow reference argmax(w·AR + (1-w)·D_0), D_0 from k masks (I5).
void check_mixed_trust(const engine::Model& model, int32_t k, float w, int32_t max_tokens) {
  TidarRuntime f(model);
  Ref ref(model);
  const int32_t mask = model.config().mask;
  const int32_t vocab = model.config().vocab;
  for (const auto& prompt : {std::vector<int32_t>{1}, model.tokenizer().encode("Once upon a time, Lily", true)}) {
    auto td = f.run(request(prompt, max_tokens, "tidar",
                            R"({"k": ")" + std::to_string(k) + R"(", "w": ")" + std::to_string(w) + R"("})"));
    REQUIRE_MESSAGE(td.finish_reason != SPECD_FINISH_ERROR, td.error.message);
    std::vector<int32_t> seq = prompt, slow;
    while (static_cast<int32_t>(slow.size()) < static_cast<int32_t>(td.tokens.size())) {
      const engine::SeqId s = ref.prefix(std::vector<int32_t>(seq.begin(), seq.end() - 1));
      auto out = ref.run(s, {seq.back()}, k);
      ref.kv.free_seq(s);
      std::vector<float> t(static_cast<size_t>(vocab));
      for (int32_t v = 0; v < vocab; ++v)
        t[static_cast<size_t>(v)] = w * out[0][static_cast<size_t>(v)] + (1 - w) * out[1][static_cast<size_t>(v)];
      t[static_cast<size_t>(mask)] = -INFINITY;
      int32_t y = 0;
      for (int32_t v = 1; v < vocab; ++v)
        if (t[static_cast<size_t>(v)] > t[static_cast<size_t>(y)]) y = v;
      slow.push_back(y);
      seq.push_back(y);
      if (y == 2) break;
    }
    CHECK(slow == td.tokens);
  }
}

// Two-sample chi-square of the token at position pos under tidar vs ar, temperature 1, over seeds.
void check_sampling_law(const engine::Model& model, int32_t k, int n_seeds) {
  TidarRuntime f(model);
  const auto prompt = model.tokenizer().encode("Tom and Sam went to the park. They", true);  // a spread law at pos
  const size_t pos = 3;
  std::map<int32_t, int> count_ar, count_td;
  int identical = 0, compared = 0;
  for (int seed = 0; seed < n_seeds; ++seed) {
    auto req = request(prompt, 6, "ar");
    req.sampling.temperature = 1.0f;
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u;
    req.stop_tokens.clear();
    auto a = f.run(req);
    REQUIRE_MESSAGE(a.finish_reason != SPECD_FINISH_ERROR, a.error.message);  // the host never samples MASK
    req.decoder = "tidar";
    req.options_json = k > 0 ? R"({"k": ")" + std::to_string(k) + R"("})" : "{}";  // k = 0: auto
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u + 1;  // independent of the ar draw
    auto t = f.run(req);
    REQUIRE_MESSAGE(t.finish_reason != SPECD_FINISH_ERROR, t.error.message);
    REQUIRE(t.tokens.size() > pos);
    ++count_td[t.tokens[pos]];
    ++count_ar[a.tokens[pos]];
    req.sampling.seed = static_cast<uint64_t>(seed) * 7919u;  // same seed as ar: the same stream
    identical += f.run(req).tokens == a.tokens;
    ++compared;
  }
  const ChiSquare c = two_sample_chi_square(count_ar, count_td, light(20, 8));
  REQUIRE(c.dof >= 2);
  MESSAGE("chi2 = " << c.chi2 << " on " << c.dof << " dof (critical " << c.critical << "); same-seed streams identical in "
                    << identical << "/" << compared);
  CHECK(c.chi2 < c.critical);
  CHECK(identical == compared);  // each emitted token is one sample() of ar's logits, in ar's order
}

}  // namespace

TEST_CASE("specd-add-mask: vocab 513, mask 512, metadata, AR logits of ordinary tokens unchanged") {
  const engine::Model& base = stories_model();
  const engine::Model& m = load_model(mask_model_path());
  CHECK(m.config().vocab == base.config().vocab + 1);
  CHECK(m.config().vocab == 513);
  CHECK(m.config().mask == 512);
  CHECK(base.config().mask == -1);
  CHECK(m.tokenizer().vocab_size() == 513);
  auto f = engine::GgufFile::open(mask_model_path());
  REQUIRE(f.has_value());
  CHECK((*f)->get_int("specd.tidar.block_len").value_or(-1) == 8);
  CHECK((*f)->get_int("specd.mask_token_id").value_or(-1) == 512);
  // The same text encodes to the same ids ("<mask>" is a control piece, never produced from text).
  const char* text = "Once upon a time, there was a little girl named Lily. <mask>";
  CHECK(m.tokenizer().encode(text, true) == base.tokenizer().encode(text, true));
  // AR logits on ordinary tokens equal stories260K's.
  Ref a(base), b(m);
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  auto la = a.run(a.prefix({}), ids, 0);
  auto lb = b.run(b.prefix({}), ids, 0);
  for (size_t r = 0; r < ids.size(); ++r) {
    REQUIRE(lb[r].size() == 513);
    CHECK(max_abs_diff(std::span<const float>(lb[r]).first(512), la[r]) == 0.0f);
  }
  // --kind dllm, and errors.
  const std::string dir = temp_dir();
  std::string log;
  const std::string tool = build_root() + "/tools/specd-add-mask";
  REQUIRE(run_command(tool + " --model " + model_path("stories260K.gguf") + " --out " + dir +
                          "/d.gguf --kind dllm --logit-shift 0 --block-len 4 2>&1", &log) == 0);
  auto d = engine::GgufFile::open(dir + "/d.gguf");
  REQUIRE(d.has_value());
  CHECK((*d)->get_int("specd.dllm.logit_shift").value_or(-1) == 0);
  CHECK((*d)->get_int("specd.dllm.block_len").value_or(-1) == 4);
  CHECK((*d)->get_int("specd.mask_token_id").value_or(-1) == 512);
  CHECK(!(*d)->find("specd.tidar.block_len"));
  CHECK(load_model(dir + "/d.gguf").config().logit_shift == 0);
  CHECK(run_command(tool + " --model " + mask_model_path() + " --out " + dir + "/e.gguf 2>&1", &log) == 1);
  CHECK(log.find("already has a MASK") != std::string::npos);
  CHECK(run_command(tool + " --model x.gguf 2>&1", &log) == 2);
  CHECK(run_command(tool + " --model x.gguf --out y.gguf --kind foo 2>&1", &log) == 2);
  CHECK(run_command(tool + " --model x.gguf --out y.gguf --logit-shift 2 2>&1", &log) == 2);
}

TEST_CASE("tidar: pattern, group logits vs slow forwards, KV after every step (untrained MASK model)") {
  const engine::Model& m = load_model(mask_model_path());
  for (int32_t k : {1, 2, 3, 4, 8}) {
    CAPTURE(k);
    const int steps =
        check_steps(m, m.tokenizer().encode("Once upon a time, there was", true), k, light(24, 8), 1e-4f);
    CHECK(steps > 0);
  }
  check_steps(m, {1}, 16, light(20, 4), 1e-4f);
}

TEST_CASE("tidar: greedy with w = 1 equals ar on 50 prompts (untrained MASK model), 1 <= TPF <= k") {
  const engine::Model& m = load_model(mask_model_path());
  check_greedy_equals_ar(m, {8, 1, 3, 0}, 50);
}

TEST_CASE("tidar: greedy with w < 1 equals the slow per-token reference (untrained MASK model)") {
  const engine::Model& m = load_model(mask_model_path());
  check_mixed_trust(m, 4, 0.0f, light(24, 8));
  check_mixed_trust(m, 3, 0.5f, light(24, 8));
}

TEST_CASE("tidar: sampling keeps ar's law (chi-square over seeds, untrained MASK model)") {
  check_sampling_law(load_model(mask_model_path()), 4, light(800, 200));
  check_sampling_law(load_model(mask_model_path()), 0, light(400, 200));  // auto's k changes per step
}

TEST_CASE("the host never samples a model's MASK token, even at high temperature") {
  TidarRuntime f(load_model(mask_model_path()));
  int32_t mask_seen = 0;
  for (int seed = 0; seed < light(200, 40); ++seed) {
    auto req = request({1}, 24, "ar");
    req.sampling.temperature = 4.0f;  // flat enough that an unexcluded MASK would be drawn often
    req.sampling.seed = static_cast<uint64_t>(seed);
    req.stop_tokens.clear();
    auto r = f.run(req);
    REQUIRE_MESSAGE(r.finish_reason != SPECD_FINISH_ERROR, r.error.message);
    mask_seen += static_cast<int32_t>(std::count(r.tokens.begin(), r.tokens.end(), 512));
  }
  CHECK(mask_seen == 0);
}

TEST_CASE("tidar: the context limit shrinks k; max_tokens is honoured") {
  const engine::Model& m = load_model(mask_model_path());
  TidarRuntime f(m);
  const int32_t ctx = m.config().ctx_len;
  std::vector<int32_t> prompt = {1};
  engine::Rng rng(7);
  while (static_cast<int32_t>(prompt.size()) < ctx - 12) prompt.push_back(static_cast<int32_t>(3 + rng.next() % 500));
  auto ar = f.run(request(prompt, 64, "ar"));
  auto td = f.run(request(prompt, 64, "tidar", kLight ? R"({"k": "6"})" : R"({"k": "16"})"));
  CHECK(td.tokens == ar.tokens);
  CHECK(td.finish_reason == ar.finish_reason);
  auto one = f.run(request({1}, 1, "tidar"));
  CHECK(one.tokens.size() == 1);
  auto five = f.run(request({1}, 5, "tidar"));
  CHECK(five.tokens.size() <= 5);
}

TEST_CASE("tidar: bad options and a model without MASK give named errors") {
  {
    RuntimeFixture f({}, {"tidar"});  // stories260K: no MASK token
    auto r = f.rt.submit(request({1, 403}, 8, "tidar"), {});
    REQUIRE(!r.has_value());
    CHECK(r.error().code == SPECD_E_BAD_MODEL);
    CHECK(r.error().message.find("MASK") != std::string::npos);
    CHECK_MESSAGE(r.error().message.find("scripts/train.sh tidar") != std::string::npos, r.error().message);  // what to do next
  }
  TidarRuntime f(load_model(mask_model_path()));
  for (const char* opts : {R"({"k": "0"})", R"({"k": "17"})", R"({"w": "1.5"})", R"({"w": "-0.1"})",
                           R"({"k": "two"})", R"({"prefill_chunk": "0"})", R"({"draft": "4"})"}) {
    auto r = f.rt.submit(request({1, 403}, 8, "tidar", opts), {});
    REQUIRE_MESSAGE(!r.has_value(), opts);
    CHECK_MESSAGE(r.error().code == SPECD_E_BAD_OPTION, opts << ": " << r.error().message);
  }
}

TEST_CASE("tidar on the trained model: checks per step, greedy equals ar, sampling law, TPF > 1") {
  const std::string path = trained_path();
  const engine::Model& m = load_model(path);
  REQUIRE(m.config().mask >= 0);
  auto f = engine::GgufFile::open(path);
  REQUIRE(f.has_value());
  const int32_t block = static_cast<int32_t>((*f)->get_int("specd.tidar.block_len").value_or(8));
  check_steps(m, m.tokenizer().encode("Once upon a time, there was", true), block, light(24, 8), 1e-4f);
  const double tpf = check_greedy_equals_ar(m, {block, 4, 0}, 50);
  CHECK(tpf > 1.0);
  check_mixed_trust(m, 4, 0.0f, light(16, 6));
  check_sampling_law(m, 4, light(400, 200));
}

TEST_CASE("tidar auto keeps the acceptance a request learned in the host's decoder memory for the next one") {
  const engine::Model& m = load_model(trained_path());
  TidarRuntime f(m);
  const auto prompt = m.tokenizer().encode("Once upon a time, there was", true);
  const auto first = f.run(request(prompt, 48, "tidar"));
  REQUIRE(first.finish_reason != SPECD_FINISH_ERROR);
  const auto* hist = static_cast<const spec_accept_hist*>(f.rt.decoder_memory("tidar", sizeof(spec_accept_hist)));
  REQUIRE(hist != nullptr);
  if (first.steps == first.prefill_steps + static_cast<int32_t>(first.tokens.size()) - 1) {
    MESSAGE("auto took only plain steps here: nothing to keep");  // it may, with the measured costs
    CHECK(hist->version == 0);
    return;
  }
  CHECK(hist->version == SPEC_AUTO_HIST_VERSION);
  CHECK(hist->acc.tries[1] > 0.0);
  const auto second = f.run(request(prompt, 48, "tidar"));  // seeded from it: the same tokens (lossless)
  CHECK(second.tokens == first.tokens);
  CHECK(hist->version == SPEC_AUTO_HIST_VERSION);
}
