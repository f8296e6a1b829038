// GenerationReport: the stats line, the --json object and the error object shared by specd generate and specctl.
#include "cli/generation_report.h"

#include "cli/exit_codes.h"
#include "kernels/result.h"

#include <cstdio>

namespace specd::cli {
namespace {

template <class T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

int exit_code_for(int code) {
  switch (SPECD_ERR_PRIMARY(code)) {
    case SPECD_OK: return kExitOk;
    // What the caller asked for cannot be used as given: the same answer whether the command line
    // parser, the engine or the daemon found it.
    case SPECD_E_INVALID_ARG:
    case SPECD_E_BAD_TOKEN:
    case SPECD_E_UNKNOWN_DECODER:
    case SPECD_E_UNKNOWN_MODEL:
    case SPECD_E_BAD_OPTION: return kExitUsage;
    case SPECD_E_ACCESS: return kExitAccess;
    default: return kExitFailed;
  }
}

nlohmann::json report_json(const GenerationReport& r) {
  return nlohmann::json{
      {"text", r.text},
      {"token_ids", r.token_ids},
      {"finish_reason", r.finish_reason},
      {"model", r.model},
      {"decoder", r.decoder},
      {"prompt_tokens", r.prompt_tokens},
      {"generated_tokens", r.generated_tokens},
      {"forwards", r.forwards},
      {"tokens_per_forward", r.tokens_per_forward},
      {"accepted_hist", r.accepted_hist},
      {"ttft_ms", r.ttft_ms},
      {"decode_tok_s", r.decode_tok_s},
      {"prefill_tok_s", or_null(r.prefill_tok_s)},
      {"decode_ms", or_null(r.decode_ms)},
      {"run_id", or_null(r.run_id)},
      {"threads", or_null(r.threads)},
      {"device", or_null(r.device)},
      {"isa", or_null(r.isa)},
      {"auto_settings", r.auto_settings ? *r.auto_settings : nlohmann::json(nullptr)},
  };
}

std::string stats_line(const GenerationReport& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "[%s: %lld prompt tokens, %lld generated, TTFT %.1f ms, decode %.1f tok/s, %.2f tokens/forward, %s",
                r.finish_reason.c_str(), static_cast<long long>(r.prompt_tokens),
                static_cast<long long>(r.generated_tokens), r.ttft_ms, r.decode_tok_s, r.tokens_per_forward,
                r.decoder.empty() ? "ar" : r.decoder.c_str());
  std::string line = buf;
  if (r.run_id) line.append(", run ").append(std::to_string(*r.run_id));
  if (r.device) line.append(", ").append(*r.device);
  if (r.isa) line.append(" ").append(*r.isa);
  line.append("]");
  return line;
}

nlohmann::json error_json(int code, const std::string& message) {
  return nlohmann::json{{"error", error_name(code)}, {"code", code}, {"message", message}};
}

std::string dump_json(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace specd::cli
