// Loaded models for people (a block per model) and for scripts (JSON).
#include "clients/specctl_models.h"

#include <cstdio>
#include <span>

namespace specd::specctl {

using nlohmann::json;

namespace {

// n in the largest of units (each base times the one before) that keeps it under base: the
// first unit printed whole, the others with `decimals` decimals.
std::string scaled(uint64_t n, double base, std::span<const char* const> units, const char* sep, int decimals) {
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= base && u + 1 < units.size()) {
    v /= base;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f%s%s", u == 0 ? 0 : decimals, v, sep, units[u]);
  return buf;
}

}  // namespace

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  return scaled(bytes, 1024.0, kUnits, " ", 1);
}

std::string human_count(uint64_t n) {
  static constexpr const char* kUnits[] = {"", "K", "M", "B", "T"};
  return scaled(n, 1000.0, kUnits, "", 2);
}

std::string weight_type_mix(const std::vector<client::ModelStatus::WeightType>& types) {
  uint64_t total = 0;
  for (const auto& t : types) total += t.bytes;
  std::string out;
  for (const auto& t : types) {
    const double pct = total ? 100.0 * static_cast<double>(t.bytes) / static_cast<double>(total) : 0.0;
    char buf[64];
    std::snprintf(buf, sizeof buf, pct < 0.5 ? "%s <1%%" : "%s %.0f%%", t.type.c_str(), pct);
    out.append(out.empty() ? "" : ", ").append(buf);
  }
  return out;
}

json models_json(const client::Status& s) {
  json out = json::array();
  for (const auto& m : s.models) {
    json types = json::array();
    for (const auto& t : m.weight_types) types.push_back({{"type", t.type}, {"parameters", t.parameters}, {"bytes", t.bytes}});
    out.push_back({{"name", m.name}, {"path", m.path}, {"vocab", m.vocab}, {"ctx_len", m.ctx_len},
                   {"weight_bytes", m.weight_bytes}, {"device", m.device}, {"device_memory_used", m.device_memory_used},
                   {"device_memory_total", m.device_memory_total}, {"architecture", m.architecture},
                   {"parameters", m.parameters}, {"file_bytes", m.file_bytes}, {"weight_types", types},
                   {"chat_template", m.chat_template}, {"default", m.is_default},
                   {"kv_blocks_total", m.kv_blocks_total}, {"kv_blocks_free", m.kv_blocks_free},
                   {"kv_blocks_reserved", m.kv_blocks_reserved}});
  }
  return out;
}

void print_models(const client::Status& s) {
  for (const auto& m : s.models) {
    std::printf("%s%s\n", m.name.c_str(), m.is_default ? " (default)" : "");
    if (!m.architecture.empty()) {
      std::printf("  %s, %s parameters, context %d, vocabulary %d\n", m.architecture.c_str(),
                  human_count(m.parameters).c_str(), m.ctx_len, m.vocab);
      std::printf("  weights %s (%s read per token)\n", weight_type_mix(m.weight_types).c_str(),
                  human_bytes(m.weight_bytes).c_str());
      std::printf("  file %s, %s\n", human_bytes(m.file_bytes).c_str(), m.path.c_str());
      std::printf("  chat %s\n", m.chat_template ? "the model's template" : "plain text (no chat template)");
    } else {  // an older daemon: what it sends
      std::printf("  vocabulary %d, context %d, %s of weights, %s\n", m.vocab, m.ctx_len, human_bytes(m.weight_bytes).c_str(),
                  m.path.c_str());
    }
    if (m.device.empty()) continue;
    std::string memory = human_bytes(m.device_memory_used) + " held";
    if (m.device_memory_total) memory.append(" of a ").append(human_bytes(m.device_memory_total)).append(" pool");
    std::printf("  device %s, %s\n", m.device.c_str(), memory.c_str());
    // Reserved: what admitted requests may still grow into (prompt + max_tokens), so a request
    // waits for room although free blocks remain.
    if (m.kv_blocks_total)
      std::printf("  kv cache %d blocks: %d in use, %d reserved by running requests\n", m.kv_blocks_total,
                  m.kv_blocks_total - m.kv_blocks_free, m.kv_blocks_reserved);
  }
}

}  // namespace specd::specctl
