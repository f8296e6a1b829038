// specctl: the command-line client of the specd daemon: generate, status, runs, decoders, models.
#include "clients/specctl_args.h"
#include "clients/specd_client.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <optional>
#include <string>

namespace {

namespace sc = specd::client;
using nlohmann::json;
using specd::specctl::Args;

constexpr int kExitOk = 0;
constexpr int kExitRequest = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoDaemon = 3;
constexpr int kExitAccess = 4;  // the socket's permissions or the daemon's [access] lists: the same answer

// Set by SIGINT during a streaming generate; the poll loop turns it into a Cancel.
volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

// Text from the daemon is UTF-8, but a JSON dump must not throw on a stray byte.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int complain(const std::string& message, int exit_code) {
  std::fprintf(stderr, "specctl: %s\n", message.c_str());
  if (exit_code == kExitUsage) std::fputs(specd::specctl::usage_text(), stderr);
  return exit_code;
}

// A failed command: with --json, one JSON object on stdout ({"error": NAME, "code": N, "message": ...})
// so a script reading the output can parse it; otherwise a line on stderr.
int complain(bool as_json, int code, const std::string& message, int exit_code) {
  if (!as_json) return complain(message, exit_code);
  std::printf("%s\n", dump(json{{"error", specd_err_name(code)}, {"code", code}, {"message", message}}).c_str());
  return exit_code;
}

// Every generate option, checked before connecting (so usage errors never depend on a daemon).
specd::Result<sc::GenParams> gen_params(const Args& a) {
  if (!a.has("--prompt") && !a.has("--prompt-ids")) {
    return specd::Error{SPECD_E_INVALID_ARG, "generate needs --prompt TEXT or --prompt-ids IDS"};
  }
  sc::GenParams p;
  p.prompt_text = a.last("--prompt");
  if (a.has("--prompt-ids")) {
    auto ids = specd::specctl::parse_ids(a.last("--prompt-ids"));
    if (!ids) return ids.error();
    p.prompt_ids = std::move(ids.value());
  }
  p.model = a.last("--model");
  p.decoder = a.last("--decoder");
  json options = json::object();
  for (const std::string& kv : a.all("--decoder-opt")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return specd::Error{SPECD_E_INVALID_ARG, "--decoder-opt wants KEY=VALUE, got '" + kv + "'"};
    }
    options[kv.substr(0, eq)] = kv.substr(eq + 1);  // values travel as strings: {"k":"4"}
  }
  if (!options.empty()) p.decoder_options_json = dump(options);
  auto max_tokens = a.integer("--max-tokens", 128, 1, INT32_MAX);
  auto top_k = a.integer("--top-k", 0, 0, INT32_MAX);
  auto temperature = a.number("--temperature", 0.0, 0.0, 1e6);
  auto top_p = a.number("--top-p", 1.0, 0.0, 1.0);
  auto min_p = a.number("--min-p", 0.0, 0.0, 1.0);
  auto seed = a.unsigned_integer("--seed", 0);
  for (const auto* r : {&max_tokens, &top_k}) {
    if (!*r) return r->error();
  }
  for (const auto* r : {&temperature, &top_p, &min_p}) {
    if (!*r) return r->error();
  }
  if (!seed) return seed.error();
  p.max_tokens = static_cast<int32_t>(max_tokens.value());
  p.top_k = static_cast<int32_t>(top_k.value());
  p.temperature = static_cast<float>(temperature.value());
  p.top_p = static_cast<float>(top_p.value());
  p.min_p = static_cast<float>(min_p.value());
  p.seed = seed.value();
  p.stop = a.all("--stop");
  p.stream = !a.has("--json");
  return p;
}

json result_json(const sc::GenResult& r) {
  return json{{"token_ids", r.token_ids},
              {"text", r.text},
              {"finish_reason", r.finish_reason_name},
              {"usage",
               {{"prompt_tokens", r.prompt_tokens},
                {"generated_tokens", r.generated_tokens},
                {"forwards", r.forwards},
                {"tokens_per_forward", r.tokens_per_forward},
                {"accepted_hist", r.accepted_hist},
                {"ttft_ms", r.ttft_ms},
                {"decode_tok_s", r.decode_tok_s}}},
              {"run_id", r.run_id}};
}

int generate_json(sc::Client& client, const sc::GenParams& p) {
  const sc::GenResult r = client.generate_sync(p);
  std::printf("%s\n", dump(result_json(r)).c_str());
  return kExitOk;
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
  if (result) {
    std::fprintf(stderr, "[%s: %d tokens, %.1f tok/s, %.2f tokens/forward, ttft %.1f ms, run %lld]\n",
                 result->finish_reason_name.c_str(), result->generated_tokens, result->decode_tok_s,
                 result->tokens_per_forward, result->ttft_ms, static_cast<long long>(result->run_id));
  }
  if (rc != SPECD_OK) return complain(message, kExitRequest);
  return kExitOk;
}

json status_json(const sc::Status& s) {
  json models = json::array();
  for (const auto& m : s.models) {
    models.push_back({{"name", m.name}, {"path", m.path}, {"vocab", m.vocab}, {"ctx_len", m.ctx_len},
                      {"weight_bytes", m.weight_bytes}, {"device", m.device},
                      {"device_memory_used", m.device_memory_used}, {"device_memory_total", m.device_memory_total}});
  }
  json decoders = json::array();
  for (const auto& d : s.decoders) {
    decoders.push_back({{"name", d.name}, {"version", d.version}, {"description", d.description}, {"path", d.path}});
  }
  return json{{"daemon_version", s.daemon_version}, {"uptime_s", s.uptime_s}, {"models", models},
              {"decoders", decoders}, {"active_requests", s.active_requests}, {"queued_requests", s.queued_requests},
              {"connections", s.connections}, {"kv_blocks_total", s.kv_blocks_total},
              {"kv_blocks_free", s.kv_blocks_free}, {"kv_bytes_per_block", s.kv_bytes_per_block}};
}

// 16384 → "16.0 KiB".
std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(units)) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

void print_models(const sc::Status& s) {
  for (const auto& m : s.models) {
    std::printf("%-20s vocab %-6d ctx %-6d %10s  %s\n", m.name.c_str(), m.vocab, m.ctx_len, human_bytes(m.weight_bytes).c_str(),
                m.path.c_str());
    if (m.device.empty()) continue;
    std::string memory = human_bytes(m.device_memory_used) + " held";
    if (m.device_memory_total) memory.append(" of a ").append(human_bytes(m.device_memory_total)).append(" pool");
    std::printf("%-20s device %s, %s\n", "", m.device.c_str(), memory.c_str());
  }
}

void print_decoders(const sc::Status& s) {
  for (const auto& d : s.decoders) {
    std::printf("%-12s %-8s %s  (%s)\n", d.name.c_str(), d.version.c_str(), d.description.c_str(), d.path.c_str());
  }
}

int status(sc::Client& client, bool as_json) {
  const sc::Status s = client.status();
  if (as_json) {
    std::printf("%s\n", dump(status_json(s)).c_str());
    return kExitOk;
  }
  const auto up = static_cast<long long>(s.uptime_s);
  std::printf("daemon    %s, up %lldh %02lldm %02llds\n", s.daemon_version.c_str(), up / 3600, up / 60 % 60, up % 60);
  std::printf("requests  %d active, %d queued, %d connections\n", s.active_requests, s.queued_requests, s.connections);
  std::printf("kv cache  %d of %d blocks free, %s per block\n", s.kv_blocks_free, s.kv_blocks_total,
              human_bytes(s.kv_bytes_per_block).c_str());
  std::printf("models:\n");
  print_models(s);
  std::printf("decoders:\n");
  print_decoders(s);
  return kExitOk;
}

int list(sc::Client& client, bool as_json, bool models) {
  const sc::Status s = client.status();
  if (as_json) {
    std::printf("%s\n", dump(status_json(s)[models ? "models" : "decoders"]).c_str());
  } else if (models) {
    print_models(s);
  } else {
    print_decoders(s);
  }
  return kExitOk;
}

std::string local_time(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

int runs(sc::Client& client, const Args& a) {
  sc::RunsQuery q;
  auto last = a.integer("--last", 20, 1, INT32_MAX);
  if (!last) return complain(last.error().message, kExitUsage);
  auto since = a.integer("--since-ms", 0, 0, INT64_MAX);
  if (!since) return complain(since.error().message, kExitUsage);
  q.last = static_cast<int32_t>(last.value());
  q.since_unix_ms = since.value();
  q.decoder = a.last("--decoder");
  q.model = a.last("--model");
  const sc::Runs r = client.list_runs(q);
  if (a.has("--json")) {
    json out = json::array();
    for (const auto& x : r.runs) {
      out.push_back({{"id", x.id}, {"started_unix_ms", x.started_unix_ms}, {"finished_unix_ms", x.finished_unix_ms},
                     {"peer_uid", x.peer_uid}, {"peer_pid", x.peer_pid}, {"model", x.model}, {"decoder", x.decoder},
                     {"decoder_options", x.decoder_options}, {"prompt_tokens", x.prompt_tokens},
                     {"generated_tokens", x.generated_tokens}, {"forwards", x.forwards},
                     {"accepted_hist", x.accepted_hist}, {"ttft_ms", x.ttft_ms}, {"decode_tok_s", x.decode_tok_s},
                     {"finish_reason", x.finish_reason}, {"error", x.error},
                     {"auto_settings", json::parse(x.auto_settings.empty() ? "{}" : x.auto_settings, nullptr, false)}});
    }
    std::printf("%s\n", dump(json{{"runs", out}, {"dropped_log_entries", r.dropped_log_entries}}).c_str());
    return kExitOk;
  }
  std::printf("%-6s %-19s %-14s %-10s %6s %6s %8s %9s %9s  %s\n", "id", "started", "model", "decoder", "prompt", "gen",
              "forwards", "ttft ms", "tok/s", "finish");
  for (const auto& x : r.runs) {
    const bool chose = !x.auto_settings.empty() && x.auto_settings != "{}";  // the settings `auto` chose
    std::printf("%-6lld %-19s %-14s %-10s %6d %6d %8d %9.1f %9.1f  %s%s%s%s%s\n", static_cast<long long>(x.id),
                local_time(x.started_unix_ms).c_str(), x.model.c_str(), x.decoder.c_str(), x.prompt_tokens,
                x.generated_tokens, x.forwards, x.ttft_ms, x.decode_tok_s, x.finish_reason.c_str(),
                x.error.empty() ? "" : " ", x.error.c_str(), chose ? "  auto " : "", chose ? x.auto_settings.c_str() : "");
  }
  if (r.dropped_log_entries > 0) {
    std::printf("(%llu run-log entries were dropped by the daemon)\n",
                static_cast<unsigned long long>(r.dropped_log_entries));
  }
  return kExitOk;
}

int run_command(sc::Client& client, const Args& a, const sc::GenParams& gen) {
  const bool as_json = a.has("--json");
  if (a.command == "generate") return as_json ? generate_json(client, gen) : generate_stream(client, gen);
  if (a.command == "status") return status(client, as_json);
  if (a.command == "runs") return runs(client, a);
  if (a.command == "decoders") return list(client, as_json, false);
  return list(client, as_json, true);  // "models"; parse_args admits no other command
}

}  // namespace

int main(int argc, char** argv) {
  auto args = specd::specctl::parse_args(argc, argv);
  if (!args) return complain(args.error().message, kExitUsage);
  const Args& a = args.value();
  if (a.has("--help")) {
    std::fputs(specd::specctl::usage_text(), stdout);
    return kExitOk;
  }
  sc::GenParams gen;
  if (a.command == "generate") {
    auto p = gen_params(a);
    if (!p) return complain(p.error().message, kExitUsage);
    gen = std::move(p.value());
  }
  auto timeout = a.integer("--timeout-ms", 0, -1, INT32_MAX);
  if (!timeout) return complain(timeout.error().message, kExitUsage);

  const bool as_json = a.has("--json");
  sc::Options opts;
  opts.socket_path = a.last("--socket");
  opts.client_name = "specctl " + std::to_string(SPECD_CLIENT_VERSION_MAJOR) + "." +
                     std::to_string(SPECD_CLIENT_VERSION_MINOR) + "." + std::to_string(SPECD_CLIENT_VERSION_PATCH);
  opts.timeout_ms = static_cast<int32_t>(timeout.value());
  std::optional<sc::Client> client;
  try {
    client.emplace(opts);
  } catch (const sc::Error& e) {
    // Not reaching the daemon at all (no socket, nobody listening, no answer) is exit 3; access denied,
    // by the socket's permissions or by the daemon, is exit 4; any other refusal (version, protocol,
    // limits) is a request error.
    const int primary = SPECD_ERR_PRIMARY(e.code());
    return complain(as_json, e.code(), e.what(),
                    primary == SPECD_E_IO ? kExitNoDaemon : primary == SPECD_E_ACCESS ? kExitAccess : kExitRequest);
  }
  try {
    return run_command(*client, a, gen);
  } catch (const sc::Error& e) {
    return complain(as_json, e.code(), e.what(), kExitRequest);
  } catch (const std::exception& e) {
    return complain(as_json, SPECD_E_INTERNAL, e.what(), kExitRequest);
  }
}
