// `specd generate`: load a model, generate from a prompt, print text (streaming) or one JSON object.
#include "daemon/generate_command.h"

#include "daemon/cli_args.h"
#include "daemon/decode_runtime.h"
#include "daemon/model_placement.h"
#include "daemon/runtime_setup.h"
#include "engine/utf8_stream.h"
#include "kernels/cpu/matmul.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <thread>

namespace specd::daemon {
namespace {

constexpr const char* kHelp =
    "usage: specd generate --model PATH [--prompt TEXT | --prompt-ids 1,403,...] [options]\n"
    "  --max-tokens N       tokens to generate (default 256)\n"
    "  --temperature T      0 = greedy (default 0)\n"
    "  --top-k K --top-p P --min-p P   sampling filters (off by default)\n"
    "  --seed S             RNG seed (default 0)\n"
    "  --stop TEXT          end when the text contains TEXT (repeatable)\n"
    "  --decoder NAME       decoding strategy (default ar)\n"
    "  --decoder-opt K=V    decoder option (repeatable)\n"
    "  --plugin-dir DIR     where decoders are (repeatable; default: $SPECD_PLUGIN_DIR, the build tree, the install dir)\n"
    "  --side-file-dir DIR  where side files (drafter=PATH) may come from (repeatable; default: the model's\n"
    "                       folder and $SPECD_CACHE/models, as for `specd serve`)\n"
    "  --threads N          compute threads (default: all cores)\n"
    "  --device D           auto (default: the GPU when this build has CUDA and one is present, else the\n"
    "                       CPU; says which on stderr), cpu, cuda or cuda:N\n"
    "  --json               print one JSON object instead of streaming text\n";

struct StreamState {
  const engine::Tokenizer* tok;
  engine::Utf8Stream utf8;
  int32_t prev;
};

void print_tokens(int64_t, const int32_t* tokens, int32_t n, void* user) {
  auto* s = static_cast<StreamState*>(user);
  for (int32_t i = 0; i < n; ++i) {
    const std::string out = s->utf8.push(s->tok->piece(s->prev, tokens[i]));
    s->prev = tokens[i];
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  std::fflush(stdout);
}

Result<DecodeRequest> build_request(const CliArgs& a, const engine::Model& m) {
  DecodeRequest r;
  if (a.has("prompt-ids")) {
    auto ids = CliArgs::id_list(a.str("prompt-ids"));
    if (!ids) return ids.error();
    r.prompt = std::move(ids.value());
  } else {
    r.prompt = m.encode_prompt(a.str("prompt"));
  }
  // A vocabulary that adds no BOS (Qwen) encodes "" as nothing: there is no token to start from.
  if (r.prompt.empty())
    return make_error(SPECD_E_INVALID_ARG, "empty prompt (this model adds no BOS to a text): give --prompt TEXT or --prompt-ids");
  for (int32_t t : r.prompt)
    if (t >= m.config().vocab)
      return make_error(SPECD_E_BAD_TOKEN, "prompt token id %d out of range [0, %d)", t, m.config().vocab);
  auto max_tokens = a.integer("max-tokens", 256, 1, 1 << 20);
  auto temp = a.number("temperature", 0.0, 0.0, 100.0);
  auto top_k = a.integer("top-k", 0, 0, 1 << 24);
  auto top_p = a.number("top-p", 1.0, 0.0, 1.0);
  auto min_p = a.number("min-p", 0.0, 0.0, 1.0);
  auto seed = a.integer("seed", 0, 0, INT64_MAX);
  auto opts = decoder_options_json(a.all("decoder-opt"));
  for (const Error* e : {max_tokens ? nullptr : &max_tokens.error(), temp ? nullptr : &temp.error(),
                         top_k ? nullptr : &top_k.error(), top_p ? nullptr : &top_p.error(),
                         min_p ? nullptr : &min_p.error(), seed ? nullptr : &seed.error(),
                         opts ? nullptr : &opts.error()})
    if (e) return *e;
  r.max_tokens = static_cast<int32_t>(*max_tokens);
  r.sampling.temperature = static_cast<float>(*temp);
  r.sampling.top_k = static_cast<int32_t>(*top_k);
  r.sampling.top_p = static_cast<float>(*top_p);
  r.sampling.min_p = static_cast<float>(*min_p);
  r.sampling.seed = static_cast<uint64_t>(*seed);
  r.stop_tokens = m.stop_tokens();
  r.stop_strings = a.all("stop");
  r.decoder = a.str("decoder", "ar");
  r.options_json = *opts;
  return r;
}

void print_json(const engine::Model& m, const DecodeRequest& req, const DecodeResult& res, int threads,
                const char* device) {
  std::string text;
  int32_t prev = req.prompt.back();
  for (int32_t t : res.tokens) {
    text += m.tokenizer().piece(prev, t);
    prev = t;
  }
  const int32_t decode_steps = res.steps - res.prefill_steps;
  const int32_t decode_tokens = static_cast<int32_t>(res.tokens.size()) - res.prefill_tokens;
  nlohmann::json j = {
      {"token_ids", res.tokens},
      {"text", text},
      {"prompt_tokens", req.prompt.size()},
      {"generated_tokens", res.tokens.size()},
      {"forwards", res.steps},
      {"tokens_per_forward", res.tokens_per_forward()},
      {"accepted_hist", res.emitted_hist},
      {"auto_settings", nlohmann::json::parse(settings_json(res))},
      {"prefill_tok_s", res.prefill_seconds > 0 ? static_cast<double>(req.prompt.size()) / res.prefill_seconds : 0.0},
      {"decode_tok_s", res.decode_seconds > 0 && decode_steps > 0 ? decode_tokens / res.decode_seconds : 0.0},
      {"ttft_ms", res.prefill_seconds * 1e3},
      {"decode_ms", res.decode_seconds * 1e3},
      {"finish_reason", finish_reason_name(res.finish_reason)},
      {"decoder", req.decoder},
      {"model", m.path()},
      {"threads", threads},
      {"device", device},
      {"isa", kernels::isa_name(kernels::active_isa())},
  };
  // A token stream may end inside a UTF-8 character: replace invalid bytes rather than throw.
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

int run(const CliArgs& a, const engine::Model& m, int threads) {
  auto req = build_request(a, m);
  if (!req) {
    std::fprintf(stderr, "specd generate: %s\n", req.error().message.c_str());
    return 2;
  }
  PluginRegistry plugins;
  load_plugin_dirs(plugins, a.has("plugin-dir") ? a.all("plugin-dir") : default_plugin_dirs());
  kernels::ThreadPool pool(threads);
  RuntimeLimits limits;
  limits.side_files.dirs = a.all("side-file-dir");  // empty: the defaults
  auto placed = place_model(m, a.has("device") ? a.str("device") : "auto", pool, limits.kv_bytes);
  if (!placed) {
    std::fprintf(stderr, "specd generate: %s (%s)\n", placed.error().message.c_str(), error_name(placed.error().code));
    return placed.error().code == SPECD_E_INVALID_ARG || placed.error().code == SPECD_E_UNSUPPORTED ? 2 : 1;
  }
  std::fprintf(stderr, "specd generate: device %s\n", placed->why.c_str());
  DecodeRuntime rt(m, plugins, pool, limits, placed->weights.get());
  const bool json = a.has("json");
  StreamState stream{&m.tokenizer(), {}, req->prompt.back()};
  auto res = rt.run(*req, json ? nullptr : print_tokens, &stream);
  if (!res) {
    std::fprintf(stderr, "specd generate: %s (%s)\n", res.error().message.c_str(), error_name(res.error().code));
    const int c = res.error().code;
    // The caller's mistakes (a decoder, option or side file that cannot be used) are usage errors.
    return c == SPECD_E_UNKNOWN_DECODER || c == SPECD_E_BAD_OPTION || c == SPECD_E_ACCESS || c == SPECD_E_CONTEXT ? 2 : 1;
  }
  if (res->finish_reason == SPECD_FINISH_ERROR) {
    std::fprintf(stderr, "\nspecd generate: %s (%s)\n", res->error.message.c_str(), error_name(res->error.code));
    return 1;
  }
  if (json) {
    print_json(m, *req, *res, threads, rt.forward().backend().name());
    return 0;
  }
  const std::string tail = stream.utf8.flush();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::printf("\n");
  const int32_t decode_tokens = static_cast<int32_t>(res->tokens.size()) - res->prefill_tokens;
  std::fprintf(stderr, "[%s: %zu prompt tokens, %zu generated, TTFT %.1f ms, decode %.1f tok/s, %.2f tokens/forward, %s, %s]\n",
               req->decoder.c_str(), req->prompt.size(), res->tokens.size(), res->prefill_seconds * 1e3,
               res->decode_seconds > 0 ? decode_tokens / res->decode_seconds : 0.0, res->tokens_per_forward(),
               finish_reason_name(res->finish_reason), kernels::isa_name(kernels::active_isa()));
  return 0;
}

}  // namespace

int generate_command(int argc, char** argv) {
  int exit_code = 0;
  const auto args = parse_command_line("generate", kHelp, argc, argv,
                                       {"model", "prompt", "prompt-ids", "max-tokens", "temperature", "top-k", "top-p", "min-p",
                                        "seed", "threads", "stop", "decoder", "decoder-opt", "plugin-dir", "side-file-dir", "device"},
                                       {"json"}, &exit_code);
  if (!args) return exit_code;
  const CliArgs& a = *args;
  if (!a.has("model")) {
    std::fprintf(stderr, "specd generate: --model PATH is required (scripts/default-model.sh prints the default)\n");
    return 2;
  }
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto threads = a.integer("threads", hw, 1, 1024);
  if (!threads) {
    std::fprintf(stderr, "specd generate: %s\n", threads.error().message.c_str());
    return 2;
  }
  auto model = engine::Model::load(a.str("model"));
  if (!model) {
    std::fprintf(stderr, "specd generate: cannot load %s: %s\n", a.str("model").c_str(), model.error().message.c_str());
    return 1;
  }
  return run(a, **model, static_cast<int>(*threads));
}

}  // namespace specd::daemon
