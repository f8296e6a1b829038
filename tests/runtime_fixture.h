// Shared set-up for runtime tests: stories260K, the built decoders and test plugins, a runtime.
#pragma once

#include "daemon/decode_runtime.h"
#include "daemon/plugin_loader.h"
#include "tests/engine_fixture.h"

#include <string>
#include <vector>

namespace specd::test {

inline std::string plugin_path(const std::string& name) {
  for (const char* dir : {"/plugins/", "/tests/plugins/"}) {
    const std::string p = build_root() + dir + name + ".so";
    if (FILE* f = std::fopen(p.c_str(), "rb")) {
      std::fclose(f);
      return p;
    }
  }
  return build_root() + "/plugins/" + name + ".so";
}

struct RuntimeFixture {
  daemon::PluginRegistry plugins;
  kernels::ThreadPool pool{2};
  daemon::DecodeRuntime rt;

  explicit RuntimeFixture(daemon::RuntimeLimits limits = {},
                          std::vector<std::string> names = {"ar", "ngram", "c_plugin", "misbehave"})
      : RuntimeFixture(stories_model(), std::move(limits), std::move(names)) {}
  // The same on another model (tests/arch_models.h), which must outlive the fixture.
  RuntimeFixture(const engine::Model& model, daemon::RuntimeLimits limits = {},
                 std::vector<std::string> names = {"ar", "ngram", "c_plugin", "misbehave"})
      : rt(model, load(plugins, names), pool, with_side_dir(model, std::move(limits)), test_weights(model)) {}

  // Unless a test names its own, side files may come from the defaults and from side_dir().
  static daemon::RuntimeLimits with_side_dir(const engine::Model& model, daemon::RuntimeLimits limits) {
    if (limits.side_files.dirs.empty()) {
      limits.side_files.dirs = daemon::default_side_file_dirs(model.path());
      limits.side_files.dirs.push_back(side_dir());
    }
    return limits;
  }

  static const daemon::PluginRegistry& load(daemon::PluginRegistry& reg, const std::vector<std::string>& names) {
    for (const auto& n : names) {
      auto st = reg.load_file(plugin_path(n));
      REQUIRE_MESSAGE(st.has_value(), (st ? "" : st.error().message));
    }
    return reg;
  }

  daemon::DecodeResult run(daemon::DecodeRequest req) {
    auto r = rt.run(req);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return std::move(r.value());
  }
};

inline daemon::DecodeRequest request(std::vector<int32_t> prompt, int32_t max_tokens, const std::string& decoder = "ar",
                                     const std::string& options = "{}") {
  daemon::DecodeRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.decoder = decoder;
  r.options_json = options;
  r.stop_tokens = {2};
  return r;
}

}  // namespace specd::test
