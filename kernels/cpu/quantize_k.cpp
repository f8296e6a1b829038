// Reference weight quantizers f32 -> Q4_0/Q4_K/Q5_K/Q6_K, following llama.cpp's quantize_row_*_ref
// step for step (same searches, same float expressions in the same order, same rounding) so that our
// tools write the bytes llama-quantize writes for the same tensor: tests/test_tools.cpp checks that
// against hashes of llama-quantize's output (bench/kquant_llamacpp_expected.sh). kernels_lib is built
// with -ffp-contract=off; llama.cpp's build may fuse multiply-adds here, but on the files checked no
// byte differed.
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant_k.h"
#include "kernels/cpu/quant_k_impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace specd::kernels {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* y) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < 16; ++j) {
      // llama.cpp truncates x/d + 8.5 through int8_t; values are within [0, 16.5] by construction.
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// make_qkx2_quants: scale and minimum for n values on levels 0..nmax, minimizing the weighted squared
// error over nstep+1 trial scales around nmax/(max - min). Returns the scale; *neg_min = -min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                       float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      aux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float cur_error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * aux[i] + this_min - x[i];
      cur_error += w[i] * (diff * diff);
    }
    if (cur_error < best_error) {
      std::memcpy(L, aux, static_cast<size_t>(n));
      best_error = cur_error;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

// Q4_K (nmax 15) and Q5_K (nmax 31): per 32-element sub-block a scale and a minimum from
// make_qkx2_quants, both re-quantized to 6 bits against the block's largest, then the levels
// recomputed against the rounded scales. Fills L[256] and the block's d/dmin/scales.
void quantize_k45_levels(const float* x, int nmax, float rmin, int nstep, uint8_t* L, uint16_t* d_out,
                         uint16_t* dmin_out, uint8_t* scales_out) {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(scales_out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    // llama.cpp stores nearest_int into a uint8_t before clamping to 63; we keep that wrap.
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      scales_out[j] = ls;
      scales_out[j + 4] = lm;
    } else {
      scales_out[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales_out[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      scales_out[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = f32_to_f16(max_scale / 63.f);
  *dmin_out = f32_to_f16(max_min / 63.f);
  uint8_t sc[8], mn[8];
  unpack_scale_min_k4(scales_out, sc, mn);
  for (int j = 0; j < 8; ++j) {
    const float d = f16_to_f32(*d_out) * sc[j];
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(*dmin_out) * mn[j];
    for (int l = 0; l < 32; ++l) {
      L[32 * j + l] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int((x[32 * j + l] + dm) / d))));
    }
  }
}

void quantize_q4_K(const float* x, int64_t n, BlockQ4_K* y) {
  uint8_t L[kQK];
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    quantize_k45_levels(x, 15, -1.0f, 20, L, &y[i].d, &y[i].dmin, y[i].scales);
    for (int s = 0; s < 4; ++s) {
      for (int l = 0; l < 32; ++l) y[i].qs[32 * s + l] = static_cast<uint8_t>(L[64 * s + l] | (L[64 * s + l + 32] << 4));
    }
  }
}

void quantize_q5_K(const float* x, int64_t n, BlockQ5_K* y) {
  uint8_t L[kQK];
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    quantize_k45_levels(x, 31, -0.5f, 15, L, &y[i].d, &y[i].dmin, y[i].scales);
    std::memset(y[i].qh, 0, sizeof y[i].qh);
    for (int s = 0; s < 4; ++s) {
      for (int l = 0; l < 32; ++l) {
        const int l1 = L[64 * s + l], l2 = L[64 * s + l + 32];
        y[i].qh[l] |= static_cast<uint8_t>(((l1 >> 4) << (2 * s)) | ((l2 >> 4) << (2 * s + 1)));
        y[i].qs[32 * s + l] = static_cast<uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
      }
    }
  }
}

// make_qx_quants with rmse_type 1 and no importance weights (what Q6_K uses): a signed scale for n
// values on levels -nmax..nmax-1, the best of 19 trial scales by weighted (x^2) least squares.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void quantize_q6_K(const float* x, int64_t n, BlockQ6_K* y) {
  int8_t L[kQK];
  float scales[16];
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = make_qx_quants(16, 32, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    BlockQ6_K& b = y[i];
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b, 0, sizeof b);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b.d = f32_to_f16(1 / iscale);
    for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[g])));
    for (int g = 0; g < 16; ++g) {
      const float d = f16_to_f32(b.d) * b.scales[g];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * g + l] = static_cast<int8_t>(std::max(-32, std::min(31, nearest_int(x[16 * g + l] / d))) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        b.ql[64 * h + l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        b.ql[64 * h + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        b.qh[32 * h + l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                                ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace

bool quantize_row(GgmlType type, const float* x, int64_t n, void* out) {
  switch (type) {
    case GgmlType::Q8_0:
      quantize_q8_0(x, n, out);
      return true;
    case GgmlType::Q4_0:
      quantize_q4_0(x, n, static_cast<BlockQ4_0*>(out));
      return true;
    case GgmlType::Q4_K:
      quantize_q4_K(x, n, static_cast<BlockQ4_K*>(out));
      return true;
    case GgmlType::Q5_K:
      quantize_q5_K(x, n, static_cast<BlockQ5_K*>(out));
      return true;
    case GgmlType::Q6_K:
      quantize_q6_K(x, n, static_cast<BlockQ6_K*>(out));
      return true;
    default:
      return false;
  }
}

}  // namespace specd::kernels
