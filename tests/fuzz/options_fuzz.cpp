// libFuzzer target for decoder option strings: the JSON a client sends as a Generate's decoder
// options, through the runtime's parsing and every loaded decoder's create(). The first input byte
// picks the decoder, the rest is the options text. Any text must give either a named error (and
// leave the runtime idle and serving) or a run whose greedy output equals ar's: no option may make
// a decoder lossy, crash it, or hang it.
//   SPECD_FUZZ_MODEL   the model (stories260K.gguf; a trained drafter beside it is found as usual)
//   SPECD_FUZZ_PLUGINS ':'-separated decoder .so files; the first must be ar (run_fuzz.sh sets both)
#include "daemon/decode_runtime.h"
#include "daemon/plugin_loader.h"
#include "engine/model.h"
#include "kernels/cpu/thread_pool.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace sd = specd::daemon;

namespace {

constexpr int32_t kTokens = 6;

struct State {
  std::unique_ptr<specd::engine::Model> model;
  sd::PluginRegistry plugins;
  std::unique_ptr<specd::kernels::ThreadPool> pool;
  std::unique_ptr<sd::DecodeRuntime> rt;
  std::vector<std::string> decoders;
  std::vector<int32_t> ar_tokens;  // the oracle: ar's greedy continuation of the prompt
};

State& state() {
  static State s;
  return s;
}

sd::DecodeRequest request(const std::string& decoder, std::string options) {
  sd::DecodeRequest r;
  r.prompt = {1, 403};
  r.max_tokens = kTokens;
  r.decoder = decoder;
  r.options_json = std::move(options);
  return r;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "options_fuzz: %s\n", what.c_str());
  std::exit(2);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  State& s = state();
  const char* model = std::getenv("SPECD_FUZZ_MODEL");
  const char* plugins = std::getenv("SPECD_FUZZ_PLUGINS");
  if (!model || !plugins) die("set SPECD_FUZZ_MODEL and SPECD_FUZZ_PLUGINS");
  auto m = specd::engine::Model::load(model);
  if (!m) die(m.error().message);
  s.model = std::move(m.value());
  std::stringstream in(plugins);
  for (std::string path; std::getline(in, path, ':');) {
    if (path.empty()) continue;
    if (auto st = s.plugins.load_file(path); !st) die(path + ": " + st.error().message);
  }
  for (const auto& name : {"ar", "ngram", "redrafter", "tidar", "lopa"})
    if (s.plugins.find(name)) s.decoders.emplace_back(name);
  if (s.decoders.empty() || s.decoders[0] != "ar") die("SPECD_FUZZ_PLUGINS must load ar");
  s.pool = std::make_unique<specd::kernels::ThreadPool>(1);
  s.rt = std::make_unique<sd::DecodeRuntime>(*s.model, s.plugins, *s.pool);
  auto ar = s.rt->run(request("ar", "{}"));
  if (!ar) die(ar.error().message);
  s.ar_tokens = ar->tokens;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  State& s = state();
  const std::string& decoder = s.decoders[data[0] % s.decoders.size()];
  auto r = s.rt->run(request(decoder, std::string(reinterpret_cast<const char*>(data + 1), size - 1)));
  if (!s.rt->idle()) std::abort();  // a refused or finished request leaves nothing behind
  if (!r) {
    if (r.error().code >= 0 || r.error().message.empty()) std::abort();  // errors are named
    return 0;
  }
  // A decoder that runs must finish (max_tokens) with ar's tokens or fail the run with a named error.
  if (r->finish_reason == SPECD_FINISH_ERROR) {
    if (r->error.code >= 0 || r->error.message.empty()) std::abort();
    return 0;
  }
  if (r->tokens != s.ar_tokens) {
    std::fprintf(stderr, "options_fuzz: decoder %s lost ar's output\n", decoder.c_str());
    std::abort();
  }
  return 0;
}
