// `specctl generate`: shared options in, the shared report out, Ctrl-C as a Cancel.
#include "clients/specctl_generate.h"

#include "daemon/exit_codes.h"
#include "daemon/generation_options.h"
#include "daemon/generation_report.h"

#include <csignal>
#include <cstdio>
#include <optional>

namespace specd::specctl {
namespace {

namespace sc = specd::client;

// Set by SIGINT during a streaming generate; the poll loop turns it into a Cancel.
volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

daemon::GenerationReport report_of(const sc::GenParams& p, const sc::GenResult& r) {
  daemon::GenerationReport g;
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
  struct sigaction sa {};
  sa.sa_handler = on_sigint;  // no SA_RESTART: the poll's wait returns at once
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  bool done = false;
  int rc = SPECD_OK;
  std::string message;
  std::optional<sc::GenResult> result;
  bool streamed = false;
  sc::Generation g = client.generate(
      p,
      [&](const sc::TokenEvent& ev) {
        std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        std::fflush(stdout);
        streamed = streamed || !ev.text.empty();
      },
      [&](int code, std::string_view msg, const sc::GenResult* r) {
        done = true;
        rc = code;
        message = msg;
        if (r) result = *r;
      });
  bool cancel_sent = false;
  while (!done) {
    try {
      client.poll(200);
    } catch (const sc::Error&) {
      if (!done) throw;  // a lost connection ended the request: its on_done has the better message
    }
    if (g_interrupted && !cancel_sent) {
      g.cancel();
      cancel_sent = true;
    }
  }
  if (streamed) std::printf("\n");
  std::fflush(stdout);  // the text, then the summary on stderr, in that order on a terminal
  if (result) std::fprintf(stderr, "%s\n", daemon::stats_line(report_of(p, *result)).c_str());
  if (rc != SPECD_OK) return complain(false, rc, message, daemon::exit_code_for(rc));
  return daemon::kExitOk;
}

}  // namespace

Result<sc::GenParams> gen_params(const Args& a) {
  auto o = daemon::read_generation_options(a.cli, stdin);
  if (!o) return o.error();
  sc::GenParams p;
  p.prompt_text = o->prompt_text;
  p.prompt_ids = o->prompt_ids;
  p.model = a.cli.str("model");
  p.decoder = o->decoder;
  if (o->decoder_options_json != "{}") p.decoder_options_json = o->decoder_options_json;
  p.max_tokens = o->max_tokens;
  p.top_k = o->top_k;
  p.temperature = o->temperature;
  p.top_p = o->top_p;
  p.min_p = o->min_p;
  p.seed = o->seed;
  p.stop = o->stop;
  p.keep_stop = o->keep_stop;
  p.stream = !a.cli.has("json");
  return p;
}

int generate(sc::Client& client, const sc::GenParams& p) {
  if (p.stream) return generate_stream(client, p);
  const sc::GenResult r = client.generate_sync(p);
  std::printf("%s\n", daemon::dump_json(daemon::report_json(report_of(p, r))).c_str());
  return daemon::kExitOk;
}

int complain(bool as_json, int code, const std::string& message, int exit_code) {
  if (as_json) {
    std::printf("%s\n", daemon::dump_json(daemon::error_json(code, message)).c_str());
    return exit_code;
  }
  std::fprintf(stderr, "specctl: %s\n", message.c_str());
  return exit_code;
}

}  // namespace specd::specctl
