// Shared set-up for engine tests: the real stories260K model, a KV cache, a forward and helpers.
#pragma once

#include "engine/batch.h"
#include "engine/forward.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/test_device.h"
#include "tests/test_support.h"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

namespace specd::test {

inline const engine::Model& stories_model() {
  static std::unique_ptr<engine::Model> m = [] {
    auto r = engine::Model::load(model_path("stories260K.gguf"));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return std::move(r.value());
  }();
  return *m;
}

struct EngineFixture {
  const engine::Model& model = stories_model();
  kernels::ThreadPool pool{2};
  engine::KvCache kv;
  engine::Forward fwd;
  engine::Batch batch{64};

  explicit EngineFixture(engine::KvCacheOptions o = {})
      : kv(model.config().n_layers, model.config().kv_dim(), model.config().ctx_len, o),
        fwd(model, kv, pool, test_weights(model)) {}
  // The same on another model (tests/arch_models.h), which must outlive the fixture.
  explicit EngineFixture(const engine::Model& m, engine::KvCacheOptions o = {})
      : model(m), kv(m.config().n_layers, m.config().kv_dim(), m.config().ctx_len, o),
        fwd(model, kv, pool, test_weights(model)) {}

  engine::SeqId new_seq() {
    auto s = kv.create_seq();
    REQUIRE(s.has_value());
    return *s;
  }

  // Prefill tokens as one causal call and commit them all; returns the logits of the last row.
  std::vector<float> prefill(engine::SeqId seq, const std::vector<int32_t>& tokens) {
    batch.clear();
    std::vector<int32_t> rows;
    const int32_t start = kv.length(seq);
    for (size_t i = 0; i < tokens.size(); ++i)
      rows.push_back(batch.add_causal(seq, tokens[i], start + static_cast<int32_t>(i),
                                      i + 1 == tokens.size() ? engine::ROW_WANT_LOGITS : 0u));
    REQUIRE(fwd.run(batch).has_value());
    REQUIRE(fwd.commit(seq, rows).has_value());
    auto l = fwd.logits(0);
    return {l.begin(), l.end()};
  }

  // One token at a time: returns the logits after each token.
  std::vector<std::vector<float>> step_by_step(engine::SeqId seq, const std::vector<int32_t>& tokens) {
    std::vector<std::vector<float>> out;
    for (int32_t t : tokens) out.push_back(prefill(seq, {t}));
    return out;
  }
};

inline float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace specd::test
