// Golden tests against outside oracles: llama2.c's verified greedy ids/text and a numpy reference.
#include "tests/runtime_fixture.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

using namespace specd;
using namespace specd::test;

namespace {

// Greedy with the `ar` decoder through the decoding runtime, as `specd generate` runs it.
daemon::DecodeResult greedy(const engine::Model& m, std::vector<int32_t> prompt, int32_t n, int threads = 2) {
  daemon::PluginRegistry plugins;
  REQUIRE(plugins.load_file(plugin_path("ar")).has_value());
  kernels::ThreadPool pool(threads);
  daemon::DecodeRuntime rt(m, plugins, pool, {}, test_weights(m));
  auto r = rt.run(request(std::move(prompt), n));
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  return std::move(r.value());
}

std::string specd_exe() { return build_root() + "/daemon/specd"; }

}  // namespace

TEST_CASE("greedy from BOS on stories260K.gguf gives the 200 verified ids and text") {
  const auto& golden = golden_ids();
  REQUIRE(golden.size() == 200);
  for (int threads : {1, 2}) {
    auto res = greedy(stories_model(), {1}, 200, threads);
    CHECK(res.tokens == golden);
    std::vector<int32_t> all = {1};
    all.insert(all.end(), res.tokens.begin(), res.tokens.end());
    CHECK(stories_model().tokenizer().decode(all) == golden_text());
  }
}

TEST_CASE("first-step distribution matches the README (403 p=0.784, 385 p=0.156)") {
  EngineFixture f;
  auto logits = f.prefill(f.new_seq(), {1});
  float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(l - mx);
  CHECK(std::exp(logits[403] - mx) / sum == doctest::Approx(0.784).epsilon(0.002));
  CHECK(std::exp(logits[385] - mx) / sum == doctest::Approx(0.156).epsilon(0.005));
}

TEST_CASE("the llama2.c checkpoint converted to GGUF gives the same greedy ids") {
  const std::string out = temp_dir() + "/converted.gguf";
  const std::string cmd = build_root() + "/tools/specd-convert --model " + model_path("stories260K.bin") +
                          " --tokenizer " + model_path("tok512.bin") + " --out " + out + " 2>&1";
  std::string log;
  REQUIRE_MESSAGE(run_command(cmd, &log) == 0, log);
  auto m = engine::Model::load(out);
  REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
  CHECK(greedy(**m, {1}, 200).tokens == golden_ids());
}

TEST_CASE("logits equal the independent numpy reference within 1e-4") {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395};
  std::string ids;
  for (int32_t t : prompt) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(t);
  }
  const std::string out = temp_dir() + "/ref.f32";
  const std::string cmd = "/usr/bin/python3 " + source_root() + "/tests/reference/llama_ref.py " +
                          model_path("stories260K.gguf") + " --ids " + ids + " --out " + out + " 2>&1";
  std::string log;
  INFO("numpy reference output: " << log);
  REQUIRE_MESSAGE(run_command(cmd, &log) == 0, "numpy reference failed (is python3-numpy installed?)");
  const auto bytes = read_file(out);
  const int32_t vocab = stories_model().config().vocab;
  REQUIRE(bytes.size() == prompt.size() * static_cast<size_t>(vocab) * sizeof(float));
  const float* ref = reinterpret_cast<const float*>(bytes.data());

  EngineFixture f;
  const auto s = f.new_seq();
  f.batch.clear();
  for (size_t i = 0; i < prompt.size(); ++i)
    f.batch.add_causal(s, prompt[i], static_cast<int32_t>(i), engine::ROW_WANT_LOGITS);
  REQUIRE(f.fwd.run(f.batch).has_value());
  float worst = 0;
  for (size_t i = 0; i < prompt.size(); ++i)
    worst = std::max(worst, max_abs_diff(f.fwd.logits(static_cast<int32_t>(i)),
                                         {ref + i * static_cast<size_t>(vocab), static_cast<size_t>(vocab)}));
  MESSAGE("max |logit - reference| = " << worst);
  CHECK(worst < 1e-4f);
}

TEST_CASE("specd generate --json prints the documented keys and the golden ids") {
  std::string out;
  const std::string cmd = specd_exe() + " generate --model " + model_path("stories260K.gguf") +
                          " --prompt-ids 1 --max-tokens 200 --threads 1 --json";
  REQUIRE(run_command(cmd, &out) == 0);
  auto j = nlohmann::json::parse(out);
  for (const char* k : {"token_ids", "text", "prompt_tokens", "generated_tokens", "forwards", "tokens_per_forward",
                        "prefill_tok_s", "decode_tok_s", "finish_reason"})
    CHECK_MESSAGE(j.contains(k), k);
  CHECK(j["token_ids"].get<std::vector<int32_t>>() == golden_ids());
  CHECK(j["text"].get<std::string>() == golden_text());
  CHECK(j["generated_tokens"] == 200);
  CHECK(j["forwards"] == 200);
  CHECK(j["finish_reason"] == "length");
}

TEST_CASE("specd generate: text prompts, sampling determinism, and errors a user can act on") {
  const std::string base = specd_exe() + " generate --model " + model_path("stories260K.gguf");
  std::string a, b, c;
  REQUIRE(run_command(base + " --prompt 'Once upon a time' --max-tokens 40 --temperature 1 --seed 5 --json", &a) == 0);
  REQUIRE(run_command(base + " --prompt 'Once upon a time' --max-tokens 40 --temperature 1 --seed 5 --json", &b) == 0);
  REQUIRE(run_command(base + " --prompt 'Once upon a time' --max-tokens 40 --temperature 1 --seed 6 --json", &c) == 0);
  auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b), jc = nlohmann::json::parse(c);
  CHECK(ja["token_ids"] == jb["token_ids"]);
  CHECK(ja["token_ids"] != jc["token_ids"]);
  CHECK(ja["prompt_tokens"] == 5);  // BOS + "Once upon a time"

  std::string err;
  CHECK(run_command(base + " --prompt-ids 1,9999 2>&1", &err) == 2);
  CHECK_MESSAGE(err.find("out of range") != std::string::npos, err);
  err.clear();
  CHECK(run_command(base + " --prompt-ids 1,x 2>&1", &err) == 2);
  CHECK_MESSAGE(err.find("bad token id") != std::string::npos, err);
  err.clear();
  CHECK(run_command(base + " --bogus 1 2>&1", &err) == 2);
  CHECK_MESSAGE(err.find("unknown option --bogus") != std::string::npos, err);
  err.clear();
  CHECK(run_command(specd_exe() + " generate --model /nonexistent.gguf --prompt-ids 1 2>&1", &err) == 1);
  CHECK_MESSAGE(err.find("cannot load") != std::string::npos, err);
}
