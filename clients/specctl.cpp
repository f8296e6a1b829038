// specctl: the command-line client of the specd daemon: generate, chat, status, runs, decoders, models.
#include "clients/decoder_text.h"
#include "clients/specctl_args.h"
#include "clients/specctl_chat.h"
#include "clients/specctl_generate.h"
#include "clients/specctl_models.h"
#include "clients/specd_client.hpp"
#include "cli/exit_codes.h"
#include "cli/generation_report.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <optional>
#include <string>

namespace {

namespace sc = specd::client;
using nlohmann::json;
using specd::cli::dump_json;
using specd::cli::exit_code_for;
using specd::cli::kExitOk;
using specd::cli::kExitUsage;
using specd::specctl::Args;
using specd::specctl::complain;
using specd::specctl::human_bytes;
using specd::specctl::print_models;

json status_json(const sc::Status& s) {
  const json models = specd::specctl::models_json(s);
  json decoders = json::array();
  for (const auto& d : s.decoders) {
    // A daemon since protocol 1.2 describes options, losslessness and needed files (specd decoders --json).
    json details = json::parse(d.details_json, nullptr, false);
    if (!details.is_object()) details = {{"name", d.name}, {"version", d.version}, {"description", d.description}, {"path", d.path}};
    decoders.push_back(std::move(details));
  }
  return json{{"daemon_version", s.daemon_version}, {"uptime_s", s.uptime_s}, {"models", models},
              {"decoders", decoders}, {"active_requests", s.active_requests}, {"queued_requests", s.queued_requests},
              {"connections", s.connections}, {"kv_blocks_total", s.kv_blocks_total},
              {"kv_blocks_free", s.kv_blocks_free}, {"kv_blocks_reserved", s.kv_blocks_reserved},
              {"kv_bytes_per_block", s.kv_bytes_per_block}};
}

void print_decoders(const sc::Status& s) {
  for (const auto& d : s.decoders) {
    std::printf("%-12s %-8s %s  (%s)\n", d.name.c_str(), d.version.c_str(), d.description.c_str(), d.path.c_str());
  }
}

int status(sc::Client& client, bool as_json) {
  const sc::Status s = client.status();
  if (as_json) {
    std::printf("%s\n", dump_json(status_json(s)).c_str());
    return kExitOk;
  }
  const auto up = static_cast<long long>(s.uptime_s);
  std::printf("daemon    %s, up %lldh %02lldm %02llds\n", s.daemon_version.c_str(), up / 3600, up / 60 % 60, up % 60);
  std::printf("requests  %d active, %d queued, %d connections\n", s.active_requests, s.queued_requests, s.connections);
  std::printf("kv cache  %d of %d blocks free, %d reserved, %s per block\n", s.kv_blocks_free, s.kv_blocks_total,
              s.kv_blocks_reserved, human_bytes(s.kv_bytes_per_block).c_str());
  std::printf("models:\n");
  print_models(s);
  std::printf("decoders:\n");
  print_decoders(s);
  return kExitOk;
}

int list(sc::Client& client, bool as_json, bool models) {
  const sc::Status s = client.status();
  if (as_json) {
    std::printf("%s\n", dump_json(status_json(s)[models ? "models" : "decoders"]).c_str());
  } else if (models) {
    print_models(s);
  } else {
    for (const auto& d : s.decoders) {
      const json details = json::parse(d.details_json, nullptr, false);
      if (details.is_object()) std::printf("%s\n", specd::decoder_text(details).c_str());
      else std::printf("%s %s  %s  (%s)\n  options not described (an older daemon)\n\n", d.name.c_str(), d.version.c_str(),
                       d.description.c_str(), d.path.c_str());
    }
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

// A run-log column that holds JSON text (decoder options, the acceptance histogram) as the JSON
// value it is; text that does not parse stays a string.
json json_value_of(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

int runs(sc::Client& client, const Args& a) {
  sc::RunsQuery q;
  const bool as_json = a.cli.has("json");
  auto last = a.cli.integer("last", 20, 1, INT32_MAX);
  if (!last) return complain(as_json, last.error().code, last.error().message, kExitUsage);
  auto since = a.cli.integer("since-ms", 0, 0, INT64_MAX);
  if (!since) return complain(as_json, since.error().code, since.error().message, kExitUsage);
  q.last = static_cast<int32_t>(last.value());
  q.since_unix_ms = since.value();
  q.decoder = a.cli.str("decoder");
  q.model = a.cli.str("model");
  const sc::Runs r = client.list_runs(q);
  if (as_json) {
    json out = json::array();
    for (const auto& x : r.runs) {
      out.push_back({{"id", x.id}, {"started_unix_ms", x.started_unix_ms}, {"finished_unix_ms", x.finished_unix_ms},
                     {"peer_uid", x.peer_uid}, {"peer_pid", x.peer_pid}, {"model", x.model}, {"decoder", x.decoder},
                     {"decoder_options", json_value_of(x.decoder_options)}, {"prompt_tokens", x.prompt_tokens},
                     {"generated_tokens", x.generated_tokens}, {"forwards", x.forwards},
                     {"accepted_hist", json_value_of(x.accepted_hist)}, {"ttft_ms", x.ttft_ms}, {"decode_tok_s", x.decode_tok_s},
                     {"finish_reason", x.finish_reason}, {"error", x.error},
                     {"auto_settings", json_value_of(x.auto_settings.empty() ? "{}" : x.auto_settings)},
                     {"via", x.via}});
    }
    std::printf("%s\n", dump_json(json{{"runs", out}, {"dropped_log_entries", r.dropped_log_entries}}).c_str());
    return kExitOk;
  }
  std::printf("%-6s %-19s %-6s %-14s %-10s %6s %6s %8s %9s %9s  %s\n", "id", "started", "via", "model", "decoder",
              "prompt", "gen", "forwards", "ttft ms", "tok/s", "finish");
  for (const auto& x : r.runs) {
    const bool chose = !x.auto_settings.empty() && x.auto_settings != "{}";  // the settings `auto` chose
    std::printf("%-6lld %-19s %-6s %-14s %-10s %6d %6d %8d %9.1f %9.1f  %s%s%s%s%s\n", static_cast<long long>(x.id),
                local_time(x.started_unix_ms).c_str(), x.via.empty() ? "-" : x.via.c_str(), x.model.c_str(), x.decoder.c_str(), x.prompt_tokens,
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
  const bool as_json = a.cli.has("json");
  if (a.command == "generate") return specd::specctl::generate(client, gen);
  if (a.command == "chat") return specd::specctl::run_chat(client, a, gen);
  if (a.command == "status") return status(client, as_json);
  if (a.command == "runs") return runs(client, a);
  if (a.command == "decoders") return list(client, as_json, false);
  return list(client, as_json, true);  // "models"; parse_args admits no other command
}

// A bad command line: exit 2, with the usage on stderr unless the answer is JSON.
int usage_error(bool as_json, const specd::Error& e) {
  complain(as_json, e.code, e.message, kExitUsage);
  if (!as_json) std::fputs(specd::specctl::usage_text(), stderr);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = specd::specctl::parse_args(argc, argv);
  if (!args) return usage_error(specd::specctl::wants_json(argc, argv), args.error());
  const Args& a = args.value();
  const bool as_json = a.cli.has("json");
  if (a.cli.has("help")) {
    std::fputs(specd::specctl::usage_text(), stdout);
    return kExitOk;
  }
  if (a.cli.has("version")) {
    std::printf("specctl %s (libspecd-client %u.%u.%u)\n", SPECD_VERSION, SPECD_CLIENT_VERSION_MAJOR,
                SPECD_CLIENT_VERSION_MINOR, SPECD_CLIENT_VERSION_PATCH);
    return kExitOk;
  }
  sc::GenParams gen;
  if (a.command == "generate" || a.command == "chat") {
    auto p = a.command == "generate" ? specd::specctl::gen_params(a) : specd::specctl::chat_params(a);
    if (!p) {
      // A prompt that cannot be read is not a usage error; everything else here is.
      if (p.error().code == SPECD_E_IO) return complain(as_json, p.error().code, p.error().message, exit_code_for(SPECD_E_IO));
      return usage_error(as_json, p.error());
    }
    gen = std::move(p.value());
  }
  auto timeout = a.cli.integer("timeout-ms", 0, -1, INT32_MAX);
  if (!timeout) return usage_error(as_json, timeout.error());

  sc::Options opts;
  opts.socket_path = a.cli.str("socket");
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
    return complain(as_json, e.code(), e.what(), primary == SPECD_E_IO ? specd::cli::kExitNoDaemon : exit_code_for(e.code()));
  }
  try {
    return run_command(*client, a, gen);
  } catch (const sc::Error& e) {
    return complain(as_json, e.code(), e.what(), exit_code_for(e.code()));
  } catch (const std::exception& e) {
    return complain(as_json, SPECD_E_INTERNAL, e.what(), exit_code_for(SPECD_E_INTERNAL));
  }
}
