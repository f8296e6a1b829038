// Random weight matrices in every stored type, with an independent float64 decoding of each, for
// the kernel and backend conformance suites.
#pragma once

#include "kernels/cpu/matmul.h"
#include "kernels/ggml_type.h"
#include "kernels/weight_view.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace specd::test {

using specd::BlockQ8_0;
using specd::GgmlType;
using kernels::WeightView;
using kernels::f32_to_bf16;
using kernels::f32_to_f16;
using kernels::quantize_q8_0;

struct Weights {
  GgmlType type;
  int64_t n, k;
  std::vector<uint8_t> bytes;
  std::vector<double> ref;  // the weights as stored, decoded independently, [n][k]
  WeightView view() const {
    return WeightView{type, bytes.data(), n, k, bytes.size() / static_cast<size_t>(n)};
  }
};

inline size_t row_bytes(GgmlType t, int64_t k) {
  switch (t) {
    case GgmlType::F32: return 4 * k;
    case GgmlType::Q8_0: return k / 32 * sizeof(BlockQ8_0);
    default: return 2 * k;
  }
}

// Independent decoders for the reference (not the kernels' own inline helpers).
inline double half_to_double(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0x1F) return m ? std::numeric_limits<double>::quiet_NaN() : s * INFINITY;
  if (e == 0) return s * std::ldexp(m, -24);
  return s * std::ldexp(1024 + m, e - 25);
}
inline double bf16_to_double(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline Weights make_weights(GgmlType type, int64_t n, int64_t k, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Weights w{type, n, k, std::vector<uint8_t>(row_bytes(type, k) * n), std::vector<double>(n * k)};
  std::vector<float> row(k);
  for (int64_t j = 0; j < n; ++j) {
    for (auto& v : row) v = dist(rng);
    uint8_t* dst = w.bytes.data() + j * row_bytes(type, k);
    double* ref = w.ref.data() + j * k;
    for (int64_t i = 0; i < k; ++i) {
      uint16_t h;
      switch (type) {
        case GgmlType::F32: std::memcpy(dst + 4 * i, &row[i], 4); ref[i] = row[i]; break;
        case GgmlType::F16: h = f32_to_f16(row[i]); std::memcpy(dst + 2 * i, &h, 2); ref[i] = half_to_double(h); break;
        case GgmlType::BF16: h = f32_to_bf16(row[i]); std::memcpy(dst + 2 * i, &h, 2); ref[i] = bf16_to_double(h); break;
        default: break;
      }
    }
    if (type == GgmlType::Q8_0) {
      quantize_q8_0(row.data(), k, dst);
      for (int64_t b = 0; b < k / 32; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, dst + b * sizeof blk, sizeof blk);
        for (int i = 0; i < 32; ++i) ref[b * 32 + i] = half_to_double(blk.d) * blk.qs[i];
      }
    }
  }
  return w;
}

inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& f : v) f = dist(rng);
  return v;
}

}  // namespace specd::test
