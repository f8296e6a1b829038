// `specd generate`: load a model, generate from a prompt, print text (streaming) or one JSON object.
#include "daemon/generate_command.h"

#include "daemon/cli_args.h"
#include "engine/generation.h"
#include "engine/utf8_stream.h"
#include "kernels/cpu/matmul.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <thread>

namespace specd::daemon {
namespace {

using engine::GenerateRequest;

constexpr const char* kHelp =
    "usage: specd generate --model PATH [--prompt TEXT | --prompt-ids 1,403,...] [options]\n"
    "  --max-tokens N     tokens to generate (default 256)\n"
    "  --temperature T    0 = greedy (default 0)\n"
    "  --top-k K --top-p P --min-p P   sampling filters (off by default)\n"
    "  --seed S           RNG seed (default 0)\n"
    "  --threads N        compute threads (default: all cores)\n"
    "  --json             print one JSON object instead of streaming text\n";

struct StreamState {
  const engine::Tokenizer* tok;
  engine::Utf8Stream utf8;
  int32_t prev;
};

int print_token(int32_t token, void* user) {
  auto* s = static_cast<StreamState*>(user);
  const std::string out = s->utf8.push(s->tok->piece(s->prev, token));
  s->prev = token;
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

Result<GenerateRequest> build_request(const CliArgs& a, const engine::Model& m) {
  GenerateRequest r;
  if (a.has("prompt-ids")) {
    auto ids = CliArgs::id_list(a.str("prompt-ids"));
    if (!ids) return ids.error();
    r.prompt = std::move(ids.value());
  } else {
    r.prompt = m.tokenizer().encode(a.str("prompt"), true);
  }
  for (int32_t t : r.prompt)
    if (t >= m.config().vocab)
      return make_error(SPECD_E_BAD_TOKEN, "prompt token id %d out of range [0, %d)", t, m.config().vocab);
  auto max_tokens = a.integer("max-tokens", 256, 0, 1 << 20);
  auto temp = a.number("temperature", 0.0, 0.0, 100.0);
  auto top_k = a.integer("top-k", 0, 0, 1 << 24);
  auto top_p = a.number("top-p", 1.0, 0.0, 1.0);
  auto min_p = a.number("min-p", 0.0, 0.0, 1.0);
  auto seed = a.integer("seed", 0, 0, INT64_MAX);
  for (const Error* e : {max_tokens ? nullptr : &max_tokens.error(), temp ? nullptr : &temp.error(),
                         top_k ? nullptr : &top_k.error(), top_p ? nullptr : &top_p.error(),
                         min_p ? nullptr : &min_p.error(), seed ? nullptr : &seed.error()})
    if (e) return *e;
  r.max_tokens = static_cast<int32_t>(*max_tokens);
  r.sampling.temperature = static_cast<float>(*temp);
  r.sampling.top_k = static_cast<int32_t>(*top_k);
  r.sampling.top_p = static_cast<float>(*top_p);
  r.sampling.min_p = static_cast<float>(*min_p);
  r.sampling.seed = static_cast<uint64_t>(*seed);
  // llama2.c-style models mark a new document with BOS; either ends this generation.
  r.stop_tokens = {m.config().eos, m.config().bos};
  return r;
}

void print_json(const engine::Model& m, const GenerateRequest& req, const engine::GenerateResult& res,
                int threads) {
  const int32_t forwards = res.prefill_forwards + res.decode_forwards;
  std::vector<int32_t> all = {req.prompt.back()};
  all.insert(all.end(), res.tokens.begin(), res.tokens.end());
  std::string text;
  for (size_t i = 1; i < all.size(); ++i) text += m.tokenizer().piece(all[i - 1], all[i]);
  nlohmann::json j = {
      {"token_ids", res.tokens},
      {"text", text},
      {"prompt_tokens", req.prompt.size()},
      {"generated_tokens", res.tokens.size()},
      {"forwards", forwards},
      {"tokens_per_forward", forwards ? static_cast<double>(res.tokens.size()) / forwards : 0.0},
      {"prefill_tok_s", res.prefill_seconds > 0 ? static_cast<double>(req.prompt.size()) / res.prefill_seconds : 0.0},
      {"decode_tok_s", res.decode_seconds > 0 ? res.decode_forwards / res.decode_seconds : 0.0},
      {"prefill_ms", res.prefill_seconds * 1e3},
      {"decode_ms", res.decode_seconds * 1e3},
      {"finish_reason", res.finish_reason},
      {"model", m.path()},
      {"threads", threads},
      {"isa", kernels::isa_name(kernels::active_isa())},
  };
  // A token stream may end inside a UTF-8 character: replace invalid bytes rather than throw.
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace

int generate_command(int argc, char** argv) {
  auto args = CliArgs::parse(argc, argv,
                             {"model", "prompt", "prompt-ids", "max-tokens", "temperature", "top-k", "top-p",
                              "min-p", "seed", "threads"},
                             {"json", "help"});
  if (!args) {
    std::fprintf(stderr, "specd generate: %s\n%s", args.error().message.c_str(), kHelp);
    return 2;
  }
  const CliArgs& a = *args;
  if (a.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
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
  const engine::Model& m = **model;
  auto req = build_request(a, m);
  if (!req) {
    std::fprintf(stderr, "specd generate: %s\n", req.error().message.c_str());
    return 2;
  }
  kernels::ThreadPool pool(static_cast<int>(*threads));
  engine::Generator gen(m, pool);
  const bool json = a.has("json");
  StreamState stream{&m.tokenizer(), {}, req->prompt.back()};
  auto res = gen.run(*req, json ? nullptr : print_token, &stream);
  if (!res) {
    std::fprintf(stderr, "\nspecd generate: %s (%s)\n", res.error().message.c_str(), error_name(res.error().code));
    return 1;
  }
  if (json) {
    print_json(m, *req, *res, static_cast<int>(*threads));
  } else {
    const std::string tail = stream.utf8.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::printf("\n");
    std::fprintf(stderr, "[%zu prompt tokens, %zu generated, prefill %.1f tok/s, decode %.1f tok/s, %s, %s]\n",
                 req->prompt.size(), res->tokens.size(),
                 res->prefill_seconds > 0 ? static_cast<double>(req->prompt.size()) / res->prefill_seconds : 0.0,
                 res->decode_seconds > 0 ? res->decode_forwards / res->decode_seconds : 0.0,
                 res->finish_reason.c_str(), kernels::isa_name(kernels::active_isa()));
  }
  return 0;
}

}  // namespace specd::daemon
