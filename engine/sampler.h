// Sampling: greedy argmax, temperature, top-k, top-p, min-p, over a seeded per-request RNG.
//
// The filters apply in this order: temperature scales the logits, then top-k keeps the k most
// likely, top-p keeps the smallest prefix (by probability) reaching p, min-p drops tokens below
// min_p × the top probability; the survivors are renormalised. temperature ≤ 0 means greedy.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace specd::engine {

struct SamplingParams {
  float temperature = 0.0f;  // ≤ 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0f; }
};

// xoshiro256** seeded through splitmix64: same seed, same stream, on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits

 private:
  uint64_t s_[4];
};

int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(int32_t vocab);

  // Draw one token from the filtered distribution of logits; greedy params give argmax (no RNG use).
  int32_t sample(std::span<const float> logits, const SamplingParams& p, Rng& rng);
  // The filtered, renormalised distribution as dense probabilities (0 for filtered-out tokens).
  // Greedy params give a one-hot at the argmax. Speculative decoders use this for exact acceptance.
  void distribution(std::span<const float> logits, const SamplingParams& p, std::span<float> probs);

 private:
  struct Cand {
    float p;
    int32_t id;
  };
  // Fills cand_ with the surviving candidates and their renormalised probabilities; returns count.
  size_t filter(std::span<const float> logits, const SamplingParams& p);
  std::vector<Cand> cand_;
};

}  // namespace specd::engine
