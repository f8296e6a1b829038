// Portable integer block sums for the quantized-activation products (the reference the SIMD paths match).
#include "kernels/cpu/matmul_kquant.h"

namespace specd::kernels {
namespace {

struct ScalarOps {
  static float half(uint16_t h) { return f16_bits_to_f32(h); }
  static int mins(const int16_t* bsums, const uint8_t* mn) {
    int s = 0;
    for (int j = 0; j < 8; ++j) s += mn[j] * (bsums[2 * j] + bsums[2 * j + 1]);
    return s;
  }
  static int q6_off(const int16_t* bsums, const int8_t* sc) {
    int s = 0;
    for (int g = 0; g < 16; ++g) s += sc[g] * bsums[g];
    return s;
  }
  static int q4_0(const uint8_t* qs, const int8_t* x) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += ((qs[j] & 0xF) - 8) * x[j] + ((qs[j] >> 4) - 8) * x[j + 16];
    return s;
  }
  static int q4_k(const uint8_t* qs, const int8_t* x, const uint8_t* sc) { return q45(qs, nullptr, x, sc); }
  static int q5_k(const uint8_t* qs, const uint8_t* qh, const int8_t* x, const uint8_t* sc) { return q45(qs, qh, x, sc); }
  static int q45(const uint8_t* qs, const uint8_t* qh, const int8_t* x, const uint8_t* sc) {
    int s = 0;
    for (int p = 0; p < 4; ++p) {
      int lo_sum = 0, hi_sum = 0;
      for (int l = 0; l < 32; ++l) {
        int lo = qs[32 * p + l] & 0xF, hi = qs[32 * p + l] >> 4;
        if (qh != nullptr) {
          lo |= ((qh[l] >> (2 * p)) & 1) << 4;
          hi |= ((qh[l] >> (2 * p + 1)) & 1) << 4;
        }
        lo_sum += lo * x[64 * p + l];
        hi_sum += hi * x[64 * p + 32 + l];
      }
      s += sc[2 * p] * lo_sum + sc[2 * p + 1] * hi_sum;
    }
    return s;
  }
  static int q6_k(const uint8_t* ql, const uint8_t* qh, const int8_t* x, const int8_t* sc) {
    int s = 0;
    for (int g = 0; g < 16; ++g) {
      int gs = 0;
      for (int l = 0; l < 16; ++l) gs += q6_k_elem(ql, qh, 16 * g + l) * x[16 * g + l];
      s += sc[g] * gs;
    }
    return s;
  }
};

}  // namespace

void matmul_range_kq_scalar(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
                            int64_t n0, int64_t n1) {
  kq::range<ScalarOps>(w, x, ldx, m, y, ldy, n0, n1);
}

}  // namespace specd::kernels
