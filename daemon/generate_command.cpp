// `specd generate`: load a model, generate from a prompt, print text (streaming) or one JSON object.
#include "daemon/generate_command.h"

#include "cli/command_line.h"
#include "daemon/decode_runtime.h"
#include "cli/exit_codes.h"
#include "cli/generation_options.h"
#include "cli/generation_report.h"
#include "daemon/model_placement.h"
#include "daemon/runtime_setup.h"
#include "engine/utf8_stream.h"
#include "kernels/cpu/matmul.h"

#include <cstdio>
#include <thread>

namespace specd::daemon {
namespace {

constexpr const char* kHelp =
    "usage: specd generate -m PATH (-p TEXT | -p - | --prompt-ids 1,403,...) [options]\n"
    "  -m, --model PATH     the GGUF model\n"
    "  -p, --prompt TEXT    the prompt; '-' reads it from stdin (one trailing newline dropped)\n"
    "  --prompt-ids IDS     the prompt as token ids (include BOS yourself)\n"
    "  -n, --max-tokens N   tokens to generate, 1..16777216 (default 256)\n"
    "  --temperature T      0..100, 0 = greedy (default 0)\n"
    "  --top-k K --top-p P --min-p P   sampling filters (off by default)\n"
    "  --seed S             RNG seed (default 0)\n"
    "  --stop TEXT          end when the text contains TEXT, which is left out of it (repeatable)\n"
    "  --keep-stop          keep the matched stop string in the text\n"
    "  --decoder NAME       decoding strategy (default ar)\n"
    "  --decoder-opt K=V    decoder option (repeatable)\n"
    "  --plugin-dir DIR     more decoders, before the built-in ones (repeatable; built-in: $SPECD_PLUGIN_DIR, else the build tree or the install dir)\n"
    "  --side-file-dir DIR  where side files (drafter=PATH) may come from (repeatable; default: the model's\n"
    "                       folder and $SPECD_CACHE/models, as for `specd serve`)\n"
    "  -t, --threads N      compute threads, 1..1024 (default: all cores)\n"
    "  --device D           auto (default: the GPU when this build has CUDA and one is present, else the\n"
    "                       CPU; says which on stderr), cpu, cuda or cuda:N\n"
    "  --json               print one JSON object (errors too) instead of streaming text\n"
    "  -h, --help           this text;  --version  the version\n"
    "Exit status: 0 ok, 1 the run failed, 2 a bad command line or request, 4 access denied (README).\n";

// The text as the runtime gives it out (stop strings stripped), kept for --json or streamed.
struct Output {
  bool stream = false;
  std::string text;
  engine::Utf8Stream utf8;
};

void on_text(int64_t, const int32_t*, int32_t, std::string_view text, void* user) {
  auto* out = static_cast<Output*>(user);
  if (!out->stream) {
    out->text.append(text);
    return;
  }
  const std::string complete = out->utf8.push(text);
  std::fwrite(complete.data(), 1, complete.size(), stdout);
  std::fflush(stdout);
}

// A failure: "specd generate: MESSAGE" on stderr, or with --json the error object on stdout.
int fail(bool json, int code, const std::string& message) {
  if (json) std::printf("%s\n", cli::dump_json(cli::error_json(code, message)).c_str());
  else std::fprintf(stderr, "specd generate: %s\n", message.c_str());
  return cli::exit_code_for(code);
}

// A bad option value: as fail(), then the usage as after any bad command line.
int usage_fail(bool json, const Error& e) {
  const int status = fail(json, e.code, e.message);
  if (!json) std::fputs(kHelp, stderr);
  return status;
}

Result<DecodeRequest> build_request(const cli::GenerationOptions& o, const engine::Model& m) {
  DecodeRequest r;
  r.prompt = o.has_prompt_ids ? o.prompt_ids : m.encode_prompt(o.prompt_text);
  // A vocabulary that adds no BOS (Qwen) encodes "" as nothing: there is no token to start from.
  if (r.prompt.empty())
    return make_error(SPECD_E_INVALID_ARG, "empty prompt (this model adds no BOS to a text): give --prompt TEXT or --prompt-ids");
  for (int32_t t : r.prompt)
    if (t >= m.config().vocab)
      return make_error(SPECD_E_BAD_TOKEN, "prompt token id %d out of range [0, %d)", t, m.config().vocab);
  r.max_tokens = o.max_tokens;
  r.sampling.temperature = o.temperature;
  r.sampling.top_k = o.top_k;
  r.sampling.top_p = o.top_p;
  r.sampling.min_p = o.min_p;
  r.sampling.seed = o.seed;
  r.stop_tokens = m.stop_tokens();
  r.stop_strings = o.stop;
  r.keep_stop = o.keep_stop;
  r.decoder = o.decoder.empty() ? "ar" : o.decoder;
  r.options_json = o.decoder_options_json;
  return r;
}

cli::GenerationReport report_of(const engine::Model& m, const DecodeRequest& req, const DecodeResult& res, std::string text,
                           int threads, const char* device) {
  const int32_t decode_steps = res.steps - res.prefill_steps;
  const int32_t decode_tokens = static_cast<int32_t>(res.tokens.size()) - res.prefill_tokens;
  cli::GenerationReport r;
  r.token_ids = res.tokens;
  r.text = std::move(text);
  r.finish_reason = finish_reason_name(res.finish_reason);
  r.model = m.path();
  r.decoder = req.decoder;
  r.prompt_tokens = static_cast<int64_t>(req.prompt.size());
  r.generated_tokens = static_cast<int64_t>(res.tokens.size());
  r.forwards = res.steps;
  r.tokens_per_forward = res.tokens_per_forward();
  r.accepted_hist = res.emitted_hist;
  r.auto_settings = nlohmann::json::parse(settings_json(res));
  r.ttft_ms = res.prefill_seconds * 1e3;
  r.decode_tok_s = res.decode_seconds > 0 && decode_steps > 0 ? decode_tokens / res.decode_seconds : 0.0;
  r.prefill_tok_s = res.prefill_seconds > 0 ? static_cast<double>(req.prompt.size()) / res.prefill_seconds : 0.0;
  r.decode_ms = res.decode_seconds * 1e3;
  r.threads = threads;
  r.device = device;
  r.isa = kernels::isa_name(kernels::active_isa());
  return r;
}

int run(const cli::CliArgs& a, const cli::GenerationOptions& o, const engine::Model& m, int threads) {
  const bool json = a.has("json");
  auto req = build_request(o, m);
  if (!req) return fail(json, req.error().code, req.error().message);
  PluginRegistry plugins;
  load_plugin_dirs(plugins, plugin_dirs_with_defaults(a.all("plugin-dir")));
  kernels::ThreadPool pool(threads);
  RuntimeLimits limits;
  limits.side_files.dirs = a.all("side-file-dir");  // empty: the defaults
  auto placed = place_model(m, a.has("device") ? a.str("device") : "auto", pool, limits.kv_bytes);
  if (!placed) return fail(json, placed.error().code, placed.error().message);
  std::fprintf(stderr, "specd generate: device %s\n", placed->why.c_str());
  DecodeRuntime rt(m, plugins, pool, limits, placed->weights.get());
  Output out;
  out.stream = !json;
  auto res = rt.run(*req, on_text, &out);
  if (!res) return fail(json, res.error().code, res.error().message);
  if (out.stream) {
    const std::string tail = out.utf8.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::printf("\n");
    std::fflush(stdout);  // the text, then the figures on stderr, in that order on a terminal
  }
  if (res->finish_reason == SPECD_FINISH_ERROR) return fail(json, res->error.code, res->error.message);
  const cli::GenerationReport report = report_of(m, *req, *res, std::move(out.text), threads, rt.forward().backend().name());
  if (json) std::printf("%s\n", cli::dump_json(cli::report_json(report)).c_str());
  else std::fprintf(stderr, "%s\n", cli::stats_line(report).c_str());
  return cli::kExitOk;
}

std::set<std::string> value_options() {
  std::set<std::string> names = cli::generation_option_names();
  names.insert({"model", "threads", "plugin-dir", "side-file-dir", "device"});
  return names;
}

std::set<std::string> flag_options() {
  std::set<std::string> names = cli::generation_flag_names();
  names.insert("json");
  return names;
}

}  // namespace

int generate_command(int argc, char** argv) {
  int exit_code = 0;
  const auto args = cli::parse_command_line("specd generate", kHelp, argc, argv, value_options(), flag_options(), &exit_code);
  if (!args) return exit_code;
  const cli::CliArgs& a = *args;
  const bool json = a.has("json");
  if (!a.has("model"))
    return usage_fail(json, Error{SPECD_E_INVALID_ARG, "--model PATH is required (scripts/default-model.sh prints the default)"});
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto threads = a.integer("threads", hw, 1, 1024);
  if (!threads) return usage_fail(json, threads.error());
  // Every option is checked before the model loads: a mistake costs no load time.
  auto options = cli::read_generation_options(a, stdin);
  if (!options) {
    if (options.error().code == SPECD_E_IO) return fail(json, options.error().code, options.error().message);
    return usage_fail(json, options.error());
  }
  auto model = engine::Model::load(a.str("model"));
  if (!model) {
    std::string message = "cannot load ";
    message.append(a.str("model")).append(": ").append(model.error().message);
    return fail(json, model.error().code, message);
  }
  return run(a, *options, **model, static_cast<int>(*threads));
}

}  // namespace specd::daemon
