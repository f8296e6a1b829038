// Metrics: counters and histograms kept on the loop thread, rendered on demand.
#include "daemon/metrics.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace specd::daemon {
namespace {

// Label values escape backslash, double quote and newline (the exposition format's rule).
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.15g", v);
  return b;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += num(v);
  out += '\n';
}

}  // namespace

void Histogram::observe(double v, uint64_t times) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // the first bound ≥ v
  if (it != bounds_.end()) counts_[static_cast<size_t>(it - bounds_.begin())] += times;
  sum_ += v * static_cast<double>(times);
  count_ += times;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    sample(out, name + "_bucket", sep + "le=\"" + num(bounds_[i]) + "\"", static_cast<double>(cumulative));
  }
  sample(out, name + "_bucket", sep + "le=\"+Inf\"", static_cast<double>(count_));
  sample(out, name + "_sum", labels, sum_);
  sample(out, name + "_count", labels, static_cast<double>(count_));
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::request_finished(const std::string& via, const std::string& decoder, const std::string& outcome,
                               const DecodeResult* r, int32_t prompt_tokens) {
  ++requests_[{via, outcome}];
  if (!r) return;
  const auto generated = static_cast<int64_t>(r->tokens.size());
  prompt_tokens_ += static_cast<uint64_t>(std::max(prompt_tokens, 0));
  generated_tokens_ += static_cast<uint64_t>(generated);
  if (generated > 0) ttft_.observe(r->prefill_seconds);
  if (generated > 1) tpot_.observe(r->decode_seconds / static_cast<double>(generated - 1));
  DecoderFigures& d = decoders_[decoder];
  d.forwards += static_cast<uint64_t>(std::max(r->steps, 0));
  d.tokens += static_cast<uint64_t>(generated);
  for (size_t n = 0; n < r->emitted_hist.size(); ++n)
    if (r->emitted_hist[n] > 0) d.accepted.observe(static_cast<double>(n), static_cast<uint64_t>(r->emitted_hist[n]));
}

std::string Metrics::render(const EngineSnapshot& snap, int64_t http_connections, int64_t http_refused) const {
  std::string out;
  header(out, "specd_requests_total", "counter", "Requests ended, by how they came in and how they ended (the run log's finish reason).");
  for (const auto& [key, n] : requests_)
    sample(out, "specd_requests_total", "via=\"" + label(key.first) + "\",outcome=\"" + label(key.second) + "\"", static_cast<double>(n));
  header(out, "specd_requests_running", "gauge", "Requests decoding now.");
  sample(out, "specd_requests_running", "", snap.active);
  header(out, "specd_requests_waiting", "gauge", "Requests queued for a decoding slot or KV room.");
  sample(out, "specd_requests_waiting", "", snap.queued);
  header(out, "specd_kv_cache_usage_ratio", "gauge", "Fraction of KV-cache blocks in use, over all models (0 to 1).");
  const double used = snap.kv_blocks_total > 0 ? 1.0 - static_cast<double>(snap.kv_blocks_free) / snap.kv_blocks_total : 0.0;
  sample(out, "specd_kv_cache_usage_ratio", "", used);
  // Admission reserves prompt + max_tokens for each request, so a cache can refuse new work (they
  // wait) while little of it is in use: the two ratios together tell which is the case.
  header(out, "specd_kv_cache_reserved_ratio", "gauge",
         "Fraction of KV-cache blocks promised to running requests at admission, over all models (0 to 1).");
  const double reserved = snap.kv_blocks_total > 0 ? static_cast<double>(snap.kv_blocks_reserved) / snap.kv_blocks_total : 0.0;
  sample(out, "specd_kv_cache_reserved_ratio", "", reserved);
  header(out, "specd_http_connections", "gauge", "HTTP connections open.");
  sample(out, "specd_http_connections", "", static_cast<double>(http_connections));
  header(out, "specd_http_connections_refused_total", "counter", "HTTP connections refused at accept: too many open, in all or from one user.");
  sample(out, "specd_http_connections_refused_total", "", static_cast<double>(http_refused));
  header(out, "specd_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  sample(out, "specd_prompt_tokens_total", "", static_cast<double>(prompt_tokens_));
  header(out, "specd_generation_tokens_total", "counter", "Tokens generated by finished requests.");
  sample(out, "specd_generation_tokens_total", "", static_cast<double>(generated_tokens_));
  header(out, "specd_time_to_first_token_seconds", "histogram", "From the request's arrival to the first generated token.");
  ttft_.write(out, "specd_time_to_first_token_seconds", "");
  header(out, "specd_time_per_output_token_seconds", "histogram", "Mean time per token after the first, one sample per request.");
  tpot_.write(out, "specd_time_per_output_token_seconds", "");
  header(out, "specd_decoder_forwards_total", "counter", "Forwards (steps) decoders took, per decoder.");
  for (const auto& [name, d] : decoders_) sample(out, "specd_decoder_forwards_total", "decoder=\"" + label(name) + "\"", static_cast<double>(d.forwards));
  header(out, "specd_decoder_tokens_total", "counter", "Tokens decoders emitted, per decoder (tokens per forward = tokens / forwards).");
  for (const auto& [name, d] : decoders_) sample(out, "specd_decoder_tokens_total", "decoder=\"" + label(name) + "\"", static_cast<double>(d.tokens));
  header(out, "specd_decoder_accepted_length", "histogram", "Tokens one decode step emitted (the accepted length), per decoder.");
  for (const auto& [name, d] : decoders_) d.accepted.write(out, "specd_decoder_accepted_length", "decoder=\"" + label(name) + "\"");
  return out;
}

}  // namespace specd::daemon
