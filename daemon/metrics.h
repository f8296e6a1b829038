// Metrics: what GET /metrics reports, in the Prometheus text exposition format (version 0.0.4).
//
// Debian has no C or C++ Prometheus client library, and the format is small: counters, gauges and
// histograms written here, checked in the tests by `promtool check metrics`. The loop thread owns
// a Metrics; nothing here is thread-safe.
#pragma once

#include "daemon/decode_request.h"
#include "daemon/engine_worker.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace specd::daemon {

// Cumulative bucket counts over fixed upper bounds, plus sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void observe(double v, uint64_t times = 1);
  // Appends name's _bucket/_sum/_count lines; labels is "" or `k="v",...` without braces.
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative (write() sums)
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One request ended (socket or HTTP, refused ones included with result NULL): outcome is the
  // run log's finish reason ("stop", "length", "cancel", "error", ...).
  void request_finished(const std::string& via, const std::string& decoder, const std::string& outcome,
                        const DecodeResult* result, int32_t prompt_tokens);
  // The exposition text, with the engine's gauges from snap, the HTTP connections open now and those
  // refused so far ([http] max_connections, the per-uid share).
  std::string render(const EngineSnapshot& snap, int64_t http_connections, int64_t http_refused) const;

 private:
  struct DecoderFigures {
    uint64_t forwards = 0, tokens = 0;
    Histogram accepted{{0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 64}};
  };
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (via, outcome) → count
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, tpot_;
  std::map<std::string, DecoderFigures> decoders_;
};

}  // namespace specd::daemon
