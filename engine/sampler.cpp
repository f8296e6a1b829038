// Sampler: candidate filtering (top-k, top-p, min-p) and draws, allocation-free after construction.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace specd::engine {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Rng::reseed(uint64_t seed) {
  for (auto& w : s_) w = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  return best;
}

Sampler::Sampler(int32_t vocab) : cand_(static_cast<size_t>(vocab)) {}

size_t Sampler::filter(std::span<const float> logits, const SamplingParams& p) {
  const size_t n = logits.size();
  if (cand_.size() < n) cand_.resize(n);  // only if a model bigger than promised shows up
  const float inv_t = 1.0f / p.temperature;
  float mx = -INFINITY;
  for (size_t i = 0; i < n; ++i) mx = std::max(mx, logits[i] * inv_t);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float e = std::exp(logits[i] * inv_t - mx);
    cand_[i] = {e, static_cast<int32_t>(i)};
    sum += e;
  }
  for (size_t i = 0; i < n; ++i) cand_[i].p = static_cast<float>(cand_[i].p / sum);
  // Descending probability, ties by id, so the kept set never depends on sort stability.
  auto by_p = [](const Cand& a, const Cand& b) { return a.p > b.p || (a.p == b.p && a.id < b.id); };
  size_t keep = n;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(keep),
                      cand_.begin() + static_cast<std::ptrdiff_t>(n), by_p);
  } else if (p.top_p < 1.0f || p.min_p > 0.0f) {
    std::sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(n), by_p);
  }
  if (p.top_p < 1.0f) {
    double cum = 0.0;
    size_t i = 0;
    while (i < keep) {
      cum += cand_[i++].p;
      if (cum >= p.top_p) break;
    }
    keep = std::max<size_t>(1, i);
  }
  if (p.min_p > 0.0f) {
    size_t best = 0;  // after a sort cand_[0] is the top; without one, find it
    for (size_t i = 1; i < keep; ++i)
      if (cand_[i].p > cand_[best].p) best = i;
    const float floor = p.min_p * cand_[best].p;
    size_t w = 0;
    for (size_t i = 0; i < keep; ++i)
      if (cand_[i].p >= floor) cand_[w++] = cand_[i];
    keep = w;
  }
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += cand_[i].p;
  for (size_t i = 0; i < keep; ++i) cand_[i].p = static_cast<float>(cand_[i].p / kept);
  return keep;
}

int32_t Sampler::sample(std::span<const float> logits, const SamplingParams& p, Rng& rng) {
  if (p.greedy()) return argmax(logits);
  const size_t keep = filter(logits, p);
  const double u = rng.uniform();
  double cum = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cum += cand_[i].p;
    if (u < cum) return cand_[i].id;
  }
  return cand_[keep - 1].id;  // rounding left u above the last partial sum
}

void Sampler::distribution(std::span<const float> logits, const SamplingParams& p, std::span<float> probs) {
  std::fill(probs.begin(), probs.end(), 0.0f);
  if (p.greedy()) {
    probs[static_cast<size_t>(argmax(logits))] = 1.0f;
    return;
  }
  const size_t keep = filter(logits, p);
  for (size_t i = 0; i < keep; ++i) probs[static_cast<size_t>(cand_[i].id)] = cand_[i].p;
}

}  // namespace specd::engine
