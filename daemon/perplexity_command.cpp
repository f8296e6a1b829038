// `specd perplexity`: load a model, encode a file as llama-perplexity does and print its running and
// final estimates in llama-perplexity's format ("[1]x,[2]y,..." then "Final estimate: PPL = ...").
#include "daemon/perplexity_command.h"

#include "cli/command_line.h"
#include "daemon/model_placement.h"
#include "engine/forward.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/perplexity.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace specd::daemon {
namespace {

constexpr const char* kHelp =
    "usage: specd perplexity -m PATH --file TEXT [options]\n"
    "  -m, --model PATH  the GGUF model\n"
    "  --file TEXT     the text file to score\n"
    "  --ctx N        tokens per chunk (default 512; llama-perplexity's -c); the second half of each is scored\n"
    "  --batch N      rows per forward call (default 64)\n"
    "  --chunks N     score at most N chunks (default all)\n"
    "  -t, --threads N  CPU threads (default: the hardware's)\n"
    "  --device D     auto|cpu|cuda|cuda:N (default auto)\n"
    "  -h, --help     this text;  --version  the version\n";

int fail(const char* what, const Error& e, int code) {
  std::fprintf(stderr, "specd perplexity: %s%s (%s)\n", what, e.message.c_str(), error_name(e.code));
  return code;
}

}  // namespace

int perplexity_command(int argc, char** argv) {
  int exit_code = 0;
  const auto args = cli::parse_command_line("specd perplexity", kHelp, argc, argv, {"model", "file", "ctx", "batch", "chunks", "threads", "device"},
                                       {}, &exit_code);
  if (!args) return exit_code;
  const cli::CliArgs& a = *args;
  auto ctx = a.integer("ctx", 512, 4, 1 << 20);
  auto batch = a.integer("batch", 64, 1, 1 << 16);
  auto chunks = a.integer("chunks", -1, -1, 1 << 30);
  auto threads = a.integer("threads", std::max(1u, std::thread::hardware_concurrency()), 1, 1024);
  for (const Error* e : {ctx ? nullptr : &ctx.error(), batch ? nullptr : &batch.error(),
                         chunks ? nullptr : &chunks.error(), threads ? nullptr : &threads.error()})
    if (e) return fail("", *e, 2);
  if (!a.has("model") || !a.has("file")) {
    std::fprintf(stderr, "specd perplexity: --model and --file are required\n%s", kHelp);
    return 2;
  }
  std::ifstream in(a.str("file"), std::ios::binary);
  if (!in) return fail("", make_error(SPECD_E_IO, "cannot read %s", a.str("file").c_str()), 1);
  std::stringstream text;
  text << in.rdbuf();

  auto model = engine::Model::load(a.str("model"));
  if (!model) return fail("cannot load the model: ", model.error(), 1);
  const engine::Model& m = **model;
  const auto n_ctx = static_cast<int32_t>(*ctx);
  if (n_ctx > m.config().ctx_len)
    return fail("", make_error(SPECD_E_CONTEXT, "--ctx %d is past the model's context length %d", n_ctx, m.config().ctx_len), 2);
  kernels::ThreadPool pool(static_cast<int>(*threads));
  engine::KvCacheOptions kv_opts;
  kv_opts.max_seqs = 1;
  engine::KvCache kv(m.config().n_layers, m.config().kv_dim(), n_ctx, kv_opts);
  auto placed = place_model(m, a.has("device") ? a.str("device") : "auto", pool, kv.storage_bytes());
  if (!placed) return fail("", placed.error(), placed.error().code == SPECD_E_INVALID_ARG ? 2 : 1);
  engine::Forward fwd(m, kv, pool, placed->weights.get());

  // llama-perplexity encodes with add_special and then puts BOS first in every chunk when the
  // vocabulary adds it.
  const std::vector<int32_t> tokens = m.encode_prompt(text.str());
  const int32_t bos = m.tokenizer().add_bos_token() ? m.tokenizer().bos() : -1;
  std::fprintf(stderr, "specd perplexity: %zu tokens, n_ctx %d, device %s\n", tokens.size(), n_ctx, placed->why.c_str());
  auto r = engine::perplexity(fwd, kv, tokens, n_ctx, bos, static_cast<int32_t>(*batch), static_cast<int32_t>(*chunks));
  if (!r) return fail("", r.error(), r.error().code == SPECD_E_INVALID_ARG ? 2 : 1);
  for (size_t i = 0; i < r->running.size(); ++i) std::printf("[%zu]%.4f,", i + 1, r->running[i]);
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r->ppl, r->ppl_err);
  return 0;
}

}  // namespace specd::daemon
