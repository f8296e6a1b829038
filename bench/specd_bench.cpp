// specd-bench: decode tok/s per decoder (with TPF and identity against ar), prefill tok/s and the
// verify-cost curve L(k)/L(1); one JSON line per measurement. With --score-model, each decode line
// also carries the quality of what was generated: the mean per-token loss (NLL, nats) of the output
// under that model given the prompt, the measure for decoders that are not lossless (lopa).
//
// docs: BENCHMARKS.md §1. Every figure is the median of --runs runs (min and max beside it).
#include "cli/command_line.h"
#include "daemon/decode_runtime.h"
#include "cli/generation_options.h"
#include "daemon/runtime_setup.h"
#include "daemon/model_placement.h"
#include "kernels/cpu/matmul.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

using namespace specd;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// Mean per-token NLL of generated continuations under a reference model (teacher-forced, one
// causal forward per prompt + continuation; the cache is released after each).
class Scorer {
 public:
  Scorer(const engine::Model& m, kernels::ThreadPool& pool)
      : model_(m), kv_(m.config().n_layers, m.config().kv_dim(), m.config().ctx_len), fwd_(m, kv_, pool) {}

  // Sum of -log p(gen[i] | prompt, gen[<i]) over gen (tokens past the score model's context, or
  // outside its vocabulary, are not scored) and how many were scored. The prompt starts with BOS, so
  // every generated token has a row before it. A forward error ends the run with its message.
  std::pair<double, int64_t> nll(const std::vector<int32_t>& prompt, const std::vector<int32_t>& gen) {
    const int32_t ctx = model_.config().ctx_len, V = model_.config().vocab;
    auto seq = kv_.create_seq();
    if (!seq) fail(seq.error().message);
    batch_.clear();
    std::vector<int32_t> all(prompt);
    all.insert(all.end(), gen.begin(), gen.end());
    const auto n = static_cast<int32_t>(std::min<size_t>(all.size(), static_cast<size_t>(ctx)));
    for (int32_t i = 0; i < n; ++i) {
      const int32_t t = all[static_cast<size_t>(i)];
      // Rows score their successor; a token outside the score model's vocabulary becomes BOS.
      batch_.add_causal(*seq, t >= 0 && t < V ? t : model_.config().bos, i,
                        i + 1 >= static_cast<int32_t>(prompt.size()) ? engine::ROW_WANT_LOGITS : 0u);
    }
    if (auto st = fwd_.run(batch_); !st) fail(st.error().message);
    double sum = 0;
    int64_t count = 0;
    for (int32_t i = std::max<int32_t>(1, static_cast<int32_t>(prompt.size())); i < n; ++i) {
      const int32_t t = all[static_cast<size_t>(i)];
      if (t < 0 || t >= V) continue;
      const auto logits = fwd_.logits(batch_.row(i - 1).out_index);
      const float mx = *std::max_element(logits.begin(), logits.end());
      double z = 0;
      for (float l : logits) z += std::exp(static_cast<double>(l - mx));
      sum += std::log(z) - static_cast<double>(logits[static_cast<size_t>(t)] - mx);
      ++count;
    }
    kv_.free_seq(*seq);
    return {sum, count};
  }

 private:
  [[noreturn]] static void fail(const std::string& message) {
    std::fprintf(stderr, "specd-bench: --score-model: %s\n", message.c_str());
    std::exit(1);
  }
  const engine::Model& model_;
  engine::KvCache kv_;
  engine::Forward fwd_;
  engine::Batch batch_{512};
};

// Prompts for decode runs: story openings and text that repeats itself (where lookup decoders hit).
const char* const kPrompts[] = {
    "Once upon a time",
    "Lily and Ben went to the park. They saw a big dog.",
    "The cat sat on the mat. The cat sat on the mat. The cat",
    "Tom had a red ball. Tom had a red ball. Tom",
    "One day, a little girl named Sue",
    "Mom said, \"Let's go home.\" Mom said, \"Let's go home.\"",
    "There was a big tree in the garden.",
    "The sun was hot. The sun was hot. The sun",
};

struct Bench {
  const engine::Model& model;
  daemon::DecodeRuntime& rt;
  kernels::ThreadPool& pool;
  const engine::ModelWeights* weights;  // on the --device backend
  int threads, runs;
  std::vector<std::string> prompts{std::begin(kPrompts), std::end(kPrompts)};
  Scorer* scorer = nullptr;

  void emit(const char* name, const std::string& decoder, const char* unit, const Stats& s, nlohmann::json extra = {}) const {
    nlohmann::json j = {{"name", name},       {"model", model.path()},  {"decoder", decoder},
                        {"threads", threads}, {"isa", kernels::isa_name(kernels::active_isa())},
                        {"device", weights->backend().name()},
                        {"unit", unit},       {"median", s.median},     {"min", s.min},
                        {"max", s.max},       {"runs", runs}};
    for (auto& [k, v] : extra.items()) j[k] = v;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }

  struct DecodeRun {
    double tok_s = 0, tpf = 0;
    std::vector<std::vector<int32_t>> prompts, outputs;
    std::vector<int64_t> hist;
    nlohmann::json settings = nlohmann::json::object();  // steps per setting `auto` chose
  };

  // One pass over every prompt: decode tokens / decode seconds summed over prompts.
  DecodeRun decode_once(const std::string& decoder, const std::string& opts, int32_t tokens) const {
    DecodeRun r;
    double secs = 0, toks = 0, steps = 0;
    for (const std::string& prompt : prompts) {
      daemon::DecodeRequest req;
      req.prompt = model.encode_prompt(prompt);
      req.max_tokens = tokens;
      req.decoder = decoder;
      req.options_json = opts;
      auto res = rt.run(req);
      if (!res || res->finish_reason == SPECD_FINISH_ERROR) {
        std::fprintf(stderr, "specd-bench: %s\n", res ? res->error.message.c_str() : res.error().message.c_str());
        std::exit(1);
      }
      secs += res->decode_seconds;
      toks += static_cast<double>(res->tokens.size()) - res->prefill_tokens;
      steps += res->steps - res->prefill_steps;
      for (size_t i = 0; i < res->emitted_hist.size(); ++i) {
        if (r.hist.size() <= i) r.hist.resize(i + 1);
        r.hist[i] += res->emitted_hist[i];
      }
      for (const daemon::SettingCount& c : res->settings)
        r.settings[c.label] = r.settings.value(c.label, int64_t{0}) + c.steps;
      r.prompts.push_back(req.prompt);
      r.outputs.push_back(res->tokens);
    }
    r.tok_s = toks / secs;
    r.tpf = toks / steps;
    return r;
  }

  // Every decoder with opts, once per combination of the grid's values (none: once), against ar
  // measured once in the same run.
  void decode(const std::vector<std::string>& decoders, const std::vector<std::string>& opts,
              const std::vector<std::vector<std::string>>& grid, int32_t tokens) const {
    decode_once("ar", "{}", 16);  // warm-up
    const DecodeRun ar = decode_once("ar", "{}", tokens);
    std::vector<double> ar_speed;
    for (int i = 0; i < runs; ++i) ar_speed.push_back(decode_once("ar", "{}", tokens).tok_s);
    const Stats ar_stats = stats(ar_speed);
    std::vector<std::vector<std::string>> combos = {opts};
    for (const auto& axis : grid) {
      std::vector<std::vector<std::string>> next;
      for (const auto& c : combos)
        for (const auto& v : axis) {
          next.push_back(c);
          next.back().push_back(v);
        }
      combos = std::move(next);
    }
    for (const auto& d : decoders)
      for (const auto& combo : combos) {
        if (d == "ar" && &combo != &combos.front()) break;
        // K=auto leaves K out, so the decoder's `auto` chooses it; the record shows "K": "auto".
        std::vector<std::string> given;
        for (const auto& kv : combo)
          if (kv.size() < 5 || kv.compare(kv.size() - 5, 5, "=auto") != 0) given.push_back(kv);
        const std::string o = d == "ar" ? "{}" : cli::decoder_options_json(given).value();
        decode_one(d, o, d == "ar" ? "{}" : cli::decoder_options_json(combo).value(), tokens, ar, ar_stats);
      }
  }

  // shown: the options as the record shows them (o, except that K=auto values are kept).
  void decode_one(const std::string& d, const std::string& o, const std::string& shown, int32_t tokens,
                  const DecodeRun& ar, const Stats& ar_stats) const {
    std::vector<double> speed;
    DecodeRun last = ar;
    if (d != "ar")
      for (int i = 0; i < runs; ++i) speed.push_back((last = decode_once(d, o, tokens)).tok_s);
    const Stats s = d == "ar" ? ar_stats : stats(speed);
    nlohmann::json extra = {{"tokens", tokens}, {"prompts", prompts.size()}, {"options", nlohmann::json::parse(shown)},
                            {"tokens_per_forward", last.tpf}, {"accepted_hist", last.hist},
                            {"auto_settings", last.settings},
                            {"identical_to_ar", last.outputs == ar.outputs}, {"speedup_vs_ar", s.median / ar_stats.median}};
    if (scorer != nullptr) {
      double sum = 0;
      int64_t count = 0;
      for (size_t i = 0; i < last.outputs.size(); ++i) {
        const auto [s_i, n_i] = scorer->nll(last.prompts[i], last.outputs[i]);
        sum += s_i;
        count += n_i;
      }
      extra["nll_per_token"] = count > 0 ? sum / static_cast<double>(count) : 0.0;
    }
    emit("decode_tok_s", d, "tok/s", s, extra);
  }

  // Latency of one forward over k causal rows of one sequence after a committed prefix.
  static double forward_ms(engine::Forward& fwd, engine::Batch& batch, engine::SeqId seq, int32_t k, int32_t depth,
                           bool all_logits) {
    batch.clear();
    for (int32_t i = 0; i < k; ++i)
      batch.add_causal(seq, 300 + i % 100, depth + i, all_logits || i == k - 1 ? engine::ROW_WANT_LOGITS : 0u);
    const auto t0 = Clock::now();
    if (!fwd.run(batch)) std::abort();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  void prefill(int32_t n) const {
    engine::KvCache kv(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len);
    engine::Forward fwd(model, kv, pool, weights);
    engine::Batch batch(n);
    auto seq = kv.create_seq();
    std::vector<double> v;
    for (int i = 0; i < runs + 1; ++i) {
      const double ms = forward_ms(fwd, batch, *seq, n, 0, false);
      if (i > 0) v.push_back(n / (ms / 1e3));
    }
    emit("prefill_tok_s", "-", "tok/s", stats(v), {{"tokens", n}});
  }

  void verify_curve(int32_t depth, const std::vector<int32_t>& ks) const {
    engine::KvCache kv(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len);
    engine::Forward fwd(model, kv, pool, weights);
    engine::Batch batch(256);
    auto seq = kv.create_seq();
    std::vector<int32_t> rows;
    for (int32_t i = 0; i < depth; ++i) rows.push_back(batch.add_causal(*seq, 300 + i % 200, i, 0));
    if (!fwd.run(batch) || !fwd.commit(*seq, rows)) std::abort();
    double l1 = 0;
    for (int32_t k : ks) {
      std::vector<double> v;
      forward_ms(fwd, batch, *seq, k, depth, true);
      for (int i = 0; i < runs; ++i) v.push_back(forward_ms(fwd, batch, *seq, k, depth, true));
      const Stats s = stats(v);
      if (k == ks.front()) l1 = s.median;
      emit("verify_ms", "-", "ms", s, {{"k", k}, {"depth", depth}, {"ratio_vs_k1", s.median / l1}});
    }
  }
};

constexpr const char* kUsage =
    "usage: specd-bench --model PATH [--threads N] [--runs 5] [--what decode,prefill,verify]\n"
    "                   [--decoder ar,ngram] [--decoder-opt K=V ...] [--tokens 128] [--prefill 512]\n"
    "                   [--depth 256] [--ks 1,2,4,8,16,32,64] [--plugin-dir DIR] [--prompts 1..8]\n"
    "                   [--prompts-file FILE] [--grid K=V1,V2,... ...] [--score-model PATH]\n"
    "                   [--device auto|cpu|cuda|cuda:N]\n"
    "  --grid runs each decoder once per combination of the listed option values (with --decoder-opt);\n"
    "    the value auto leaves the option out, so the decoder's auto chooses it (--grid k=auto,2,4);\n"
    "  --prompts-file reads one prompt per line instead of the built-in eight;\n"
    "  --score-model adds nll_per_token: the outputs' mean loss under that model (e.g. stories260K.gguf).\n";

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto a = cli::parse_command_line(
      "specd-bench", kUsage, argc, argv,
      {"model", "threads", "runs", "tokens", "prefill", "depth", "ks", "what", "decoder", "decoder-opt", "plugin-dir",
       "prompts", "prompts-file", "grid", "score-model", "device"},
      {}, &exit_code);
  if (!a) return exit_code;
  if (!a->has("model")) {
    std::fprintf(stderr, "specd-bench: --model PATH is required\n%s", kUsage);
    return 2;
  }
  auto model = engine::Model::load(a->str("model"));
  if (!model) {
    std::fprintf(stderr, "specd-bench: %s\n", model.error().message.c_str());
    return 1;
  }
  const engine::Model& m = **model;
  // A bad numeric flag ends the run with its message rather than measuring something else.
  auto need = [](Result<int64_t> r) {
    if (!r) {
      std::fprintf(stderr, "specd-bench: %s\n", r.error().message.c_str());
      std::exit(2);
    }
    return *r;
  };
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = static_cast<int>(need(a->integer("threads", hw, 1, 1024)));  // the range of specd generate and perplexity
  kernels::ThreadPool pool(threads);
  daemon::PluginRegistry plugins;
  daemon::load_plugin_dirs(plugins, daemon::plugin_dirs_with_defaults(a->all("plugin-dir")));
  daemon::RuntimeLimits limits;
  // Device memory for the runtime's KV cache and for the one the prefill / verify measurements make.
  auto placed = daemon::place_model(m, a->has("device") ? a->str("device") : "auto", pool, limits.kv_bytes,
                                    daemon::device_memory_estimate(m, 2 * limits.kv_bytes));
  if (!placed) {
    std::fprintf(stderr, "specd-bench: --device: %s\n", placed.error().message.c_str());
    return 2;
  }
  std::fprintf(stderr, "specd-bench: device %s\n", placed->why.c_str());
  daemon::DecodeRuntime rt(m, plugins, pool, limits, placed->weights.get());
  Bench b{m, rt, pool, placed->weights.get(), threads, static_cast<int>(need(a->integer("runs", 5, 1, 1000)))};
  std::unique_ptr<engine::Model> score_model;
  std::unique_ptr<Scorer> scorer;
  if (a->has("score-model")) {
    auto sm = engine::Model::load(a->str("score-model"));
    if (!sm) {
      std::fprintf(stderr, "specd-bench: --score-model: %s\n", sm.error().message.c_str());
      return 1;
    }
    score_model = std::move(*sm);
    scorer = std::make_unique<Scorer>(*score_model, pool);
    b.scorer = scorer.get();
  }
  if (a->has("prompts-file")) {
    std::ifstream in(a->str("prompts-file"));
    b.prompts.clear();
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) b.prompts.push_back(line);
    if (b.prompts.empty()) {
      std::fprintf(stderr, "specd-bench: no prompts in %s\n", a->str("prompts-file").c_str());
      return 2;
    }
  }
  b.prompts.resize(static_cast<size_t>(
      need(a->integer("prompts", static_cast<int64_t>(b.prompts.size()), 1, static_cast<int64_t>(b.prompts.size())))));
  const std::string what = a->str("what", "decode,prefill,verify");
  const int32_t ctx = m.config().ctx_len;
  if (what.find("decode") != std::string::npos) {
    std::vector<std::string> decoders;
    for (const auto& d : a->all("decoder")) {
      for (size_t s = 0; s <= d.size();) {
        const size_t c = d.find(',', s);
        decoders.push_back(d.substr(s, c == std::string::npos ? std::string::npos : c - s));
        if (c == std::string::npos) break;
        s = c + 1;
      }
    }
    if (decoders.empty()) decoders = {"ar"};
    if (auto o = cli::decoder_options_json(a->all("decoder-opt")); !o) {
      std::fprintf(stderr, "specd-bench: %s\n", o.error().message.c_str());
      return 2;
    }
    std::vector<std::vector<std::string>> grid;  // "W=1,2,4" -> {"W=1", "W=2", "W=4"}
    for (const auto& g : a->all("grid")) {
      const size_t eq = g.find('=');
      if (eq == std::string::npos || eq + 1 >= g.size()) {
        std::fprintf(stderr, "specd-bench: --grid wants K=V1,V2,..., got '%s'\n", g.c_str());
        return 2;
      }
      auto& axis = grid.emplace_back();
      for (size_t s = eq + 1; s <= g.size();) {
        const size_t c = std::min(g.find(',', s), g.size());
        axis.push_back(g.substr(0, eq + 1) + g.substr(s, c - s));
        s = c + 1;
      }
    }
    b.decode(decoders, a->all("decoder-opt"), grid, static_cast<int32_t>(need(a->integer("tokens", 128, 1, ctx - 64))));
  }
  if (what.find("prefill") != std::string::npos)
    b.prefill(static_cast<int32_t>(need(a->integer("prefill", std::min(512, ctx), 1, ctx))));
  if (what.find("verify") != std::string::npos) {
    auto ks = cli::CliArgs::id_list(a->str("ks", "1,2,4,8,16,32,64"));
    if (!ks) {
      std::fprintf(stderr, "specd-bench: %s\n", ks.error().message.c_str());
      return 2;
    }
    b.verify_curve(static_cast<int32_t>(need(a->integer("depth", 256, 1, ctx - 64))), *ks);
  }
  return 0;
}
