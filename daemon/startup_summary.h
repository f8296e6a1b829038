// The start-up summary in the log (info level): what a person needs to know a daemon is set up as
// they meant, from `journalctl -u specd` alone.
#pragma once

#include "daemon/decode_runtime.h"
#include "daemon/plugin_loader.h"

#include <string>

namespace specd::daemon {

// "decoders: ar 1.2.0 (PATH), ngram ...".
void log_decoders(const PluginRegistry& plugins);
// One model: its architecture, weight type, size, where it runs and its share of the KV cache.
void log_model(const std::string& name, const std::string& where, DecodeRuntime& rt, size_t n_models);
// The compute threads and the KV total.
void log_engine(int threads, uint64_t kv_bytes, size_t n_models);

}  // namespace specd::daemon
