// Start-up summary lines (see startup_summary.h).
#include "daemon/startup_summary.h"

#include "daemon/log.h"
#include "kernels/ggml_type.h"

namespace specd::daemon {
namespace {

double mib(double bytes) { return bytes / (1 << 20); }

}  // namespace

void log_decoders(const PluginRegistry& plugins) {
  std::string list;
  for (const LoadedDecoder* d : plugins.list()) {
    list += list.empty() ? "" : ", ";
    list += d->name + " " + (d->desc->version ? d->desc->version : "?") + " (" + d->path + ")";
  }
  log_line(LogLevel::Info, "decoders: %s", list.empty() ? "none" : list.c_str());
}

void log_model(const std::string& name, const std::string& where, DecodeRuntime& rt, size_t n_models) {
  const engine::Model& m = rt.model();
  const engine::ModelConfig& c = m.config();
  const engine::KvCache& kv = rt.kv();
  log_line(LogLevel::Info,
           "model '%s': %s, %d layers, %s weights (%.0f MiB), context %d, on %s; KV cache %.0f MiB = %d blocks of %d "
           "tokens (limits.kv_bytes / %zu model%s)",
           name.c_str(), c.arch.c_str(), c.n_layers, ggml_type_name(m.layer(0).w_gate.type),
           mib(static_cast<double>(m.weight_bytes())), c.ctx_len, where.c_str(), mib(static_cast<double>(kv.storage_bytes())),
           kv.n_blocks(), kv.block_tokens(), n_models, n_models == 1 ? "" : "s");
}

void log_engine(int threads, uint64_t kv_bytes, size_t n_models) {
  log_line(LogLevel::Info, "engine: %d compute thread%s; limits.kv_bytes %.0f MiB split evenly between %zu model%s", threads,
           threads == 1 ? "" : "s", mib(static_cast<double>(kv_bytes)), n_models, n_models == 1 ? "" : "s");
}

}  // namespace specd::daemon
