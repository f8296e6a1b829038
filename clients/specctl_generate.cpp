// `specctl generate`: shared options in, the shared report out, Ctrl-C as a Cancel.
#include "clients/specctl_generate.h"

#include "clients/specctl_stream.h"
#include "cli/exit_codes.h"
#include "cli/generation_options.h"
#include "cli/generation_report.h"

#include <cstdio>

namespace specd::specctl {
namespace {

namespace sc = specd::client;

cli::GenerationReport report_of(const sc::GenParams& p, const sc::GenResult& r) {
  cli::GenerationReport g;
  g.token_ids = r.token_ids;
  g.text = r.text;
  g.finish_reason = r.finish_reason_name;
  g.model = p.model;  // empty: the daemon's default model
  g.decoder = p.decoder.empty() ? "ar" : p.decoder;
  g.prompt_tokens = r.prompt_tokens;
  g.generated_tokens = r.generated_tokens;
  g.forwards = r.forwards;
  g.tokens_per_forward = r.tokens_per_forward;
  g.accepted_hist = r.accepted_hist;
  g.ttft_ms = r.ttft_ms;
  g.decode_tok_s = r.decode_tok_s;
  g.run_id = r.run_id;
  return g;
}

// Stream text as it arrives; Ctrl-C cancels the request (and still reports how it ended).
int generate_stream(sc::Client& client, const sc::GenParams& p) {
  install_sigint();
  const Streamed s = stream_generation(client, p, true);
  if (s.shown) std::printf("\n");
  std::fflush(stdout);  // the text, then the summary on stderr, in that order on a terminal
  if (s.result) std::fprintf(stderr, "%s\n", cli::stats_line(report_of(p, *s.result)).c_str());
  if (s.rc != SPECD_OK) return complain(false, s.rc, s.message, cli::exit_code_for(s.rc));
  return cli::kExitOk;
}

// The request of the shared options o (the prompt, where o has one, included).
sc::GenParams params_of(const Args& a, const cli::GenerationOptions& o) {
  sc::GenParams p;
  p.prompt_text = o.prompt_text;
  p.prompt_ids = o.prompt_ids;
  p.model = a.cli.str("model");
  p.decoder = o.decoder;
  if (o.decoder_options_json != "{}") p.decoder_options_json = o.decoder_options_json;
  p.max_tokens = o.max_tokens;
  p.top_k = o.top_k;
  p.temperature = o.temperature;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.seed = o.seed;
  p.stop = o.stop;
  p.keep_stop = o.keep_stop;
  p.stream = !a.cli.has("json");
  return p;
}

}  // namespace

Result<sc::GenParams> gen_params(const Args& a) {
  auto o = cli::read_generation_options(a.cli, stdin);
  if (!o) return o.error();
  return params_of(a, o.value());
}

Result<sc::GenParams> chat_params(const Args& a) {
  auto o = cli::read_generation_settings(a.cli);
  if (!o) return o.error();
  return params_of(a, o.value());
}

int generate(sc::Client& client, const sc::GenParams& p) {
  if (p.stream) return generate_stream(client, p);
  const sc::GenResult r = client.generate_sync(p);
  std::printf("%s\n", cli::dump_json(cli::report_json(report_of(p, r))).c_str());
  return cli::kExitOk;
}

int complain(bool as_json, int code, const std::string& message, int exit_code) {
  if (as_json) {
    std::printf("%s\n", cli::dump_json(cli::error_json(code, message)).c_str());
    return exit_code;
  }
  std::fprintf(stderr, "specctl: %s\n", message.c_str());
  return exit_code;
}

}  // namespace specd::specctl
