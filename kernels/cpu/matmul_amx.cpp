// AMX-BF16 kernel: W row-major as the A tile, X packed per call into VNNI B tiles (CPU-KERNELS.md).
//
// Built twice: as is (tile instructions) and with SPECD_AMX_EMULATE (the same code with the tile
// instructions done in software, so tests can check the layouts on machines without AMX).
// Tiles: tmm0-3 = C (16 W rows x 16 X rows, f32, Yᵀ), tmm4 = A (16 W rows x 32 k), tmm5-7 = B.
// One n-block (16 W rows) is in flight against up to 4 m-blocks (64 X rows): CPU-KERNELS.md found
// one n-block best at k <= 16 and 1 n x 4 m good at k = 64. BF16 rows feed tileloadd directly;
// F16 rows, the K tail and partial n-blocks go through a 1 KB scratch tile converted in zmm. Every
// path gives the same bf16 A values, so an element's result never depends on m, n0/n1 or threads.
#include "kernels/cpu/matmul_impl.h"

#include "kernels/cpu/avx512_intrinsics.h"

// GCC 12's tile intrinsics are asm volatile without a memory clobber: a buffer written just before a
// tile load may still sit in registers or be reordered past it. Fence around every such buffer.
#define SPECD_COMPILER_BARRIER() __asm__ volatile("" ::: "memory")

#ifdef SPECD_AMX_EMULATE
#define TILE_ZERO(t) emu::zero(t)
#define TILE_LOAD(t, p, stride) emu::load(t, p, stride)
#define TILE_STORE(t, p, stride) emu::store(t, p, stride)
#define TILE_DP(c, a, b) emu::dpbf16ps(c, a, b)
#else
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOAD(t, p, stride) _tile_loadd(t, p, stride)
#define TILE_STORE(t, p, stride) _tile_stored(t, p, stride)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#endif

namespace specd::kernels {
namespace {

constexpr int kTileBytes = 1024;  // 16 rows x 64 bytes
constexpr int kMaxMBlocks = 4;    // C tiles

#ifdef SPECD_AMX_EMULATE
// Software tile registers with the palette-1 shapes this file configures (16 rows x 64 bytes).
namespace emu {
struct Tile {
  alignas(64) uint8_t b[16][64];
};
thread_local Tile tmm[8];

void zero(int t) { __builtin_memset(tmm[t].b, 0, sizeof tmm[t].b); }
void load(int t, const void* p, size_t stride) {
  for (int r = 0; r < 16; ++r) __builtin_memcpy(tmm[t].b[r], static_cast<const uint8_t*>(p) + r * stride, 64);
}
void store(int t, void* p, size_t stride) {
  for (int r = 0; r < 16; ++r) __builtin_memcpy(static_cast<uint8_t*>(p) + r * stride, tmm[t].b[r], 64);
}
float bf16_at(const Tile& t, int row, int idx) {
  uint16_t h;
  __builtin_memcpy(&h, &t.b[row][2 * idx], 2);
  return bf16_bits_to_f32(h);
}
// The SDM's TDPBF16PS order: for each k pair, C[m][n] += A[m][2k]·B[k][2n], then += A[m][2k+1]·B[k][2n+1].
void dpbf16ps(int c, int a, int b) {
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 16; ++n) {
      float acc;
      __builtin_memcpy(&acc, &tmm[c].b[m][4 * n], 4);
      for (int k = 0; k < 16; ++k) {
        acc += bf16_at(tmm[a], m, 2 * k) * bf16_at(tmm[b], k, 2 * n);
        acc += bf16_at(tmm[a], m, 2 * k + 1) * bf16_at(tmm[b], k, 2 * n + 1);
      }
      __builtin_memcpy(&tmm[c].b[m][4 * n], &acc, 4);
    }
  }
}
}  // namespace emu

void tiles_begin() {}
void tiles_end() {}
#else
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
const TileConfig kTileConfig;

// Tile state is per thread: configure on entry, release on exit so an idle thread carries no
// 8 KB of tile data through context switches.
void tiles_begin() {
  SPECD_COMPILER_BARRIER();
  _tile_loadconfig(&kTileConfig);
}
void tiles_end() { _tile_release(); }
#endif

struct Ctx {
  GgmlType type;
  const uint8_t* base;  // W
  size_t ws;            // W row stride in bytes
  int64_t K;
  int64_t ksteps;       // ceil(K / 32)
  int64_t ksteps_full;  // K / 32: steps whose 32 columns all lie inside K
  uint8_t* pack;        // X as B tiles: [ksteps][m-blocks][16 k-pairs][16 rows][2] bf16
  uint8_t* abuf;        // one A tile built in software
  uint8_t* cbuf;        // C tiles stored for the transposed write-out
};

// f32 -> bf16, round to nearest even, NaN kept quiet; same as f32_to_bf16() but 16 at a time and
// without needing AVX512-BF16.
__m256i to_bf16(__m512 v) {
  const __m512i x = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

__mmask16 mask16(int64_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1); }

// 32 floats from k0 (zeros past K) as 32 bf16 = 16 dword pairs in k order.
__m512i bf16_pairs(const float* src, int64_t valid) {
  const __m256i lo = to_bf16(_mm512_maskz_loadu_ps(mask16(valid), src));
  const __m256i hi = to_bf16(_mm512_maskz_loadu_ps(mask16(valid - 16), src + 16));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// X rows [0, rows) into B tiles: pair p of row i, step s lands at tile (s, i/16), row p, column i%16.
void pack_x(const float* x, int64_t ldx, int64_t rows, const Ctx& c, int mblocks) {
  const __m512i pair_rows = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(64));
  for (int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * ldx;
    uint8_t* col = c.pack + (i / 16) * kTileBytes + (i % 16) * 4;
    for (int64_t s = 0; s < c.ksteps; ++s) {
      const __m512i pairs = bf16_pairs(xi + s * 32, c.K - s * 32);
      _mm512_i32scatter_epi32(col + s * mblocks * kTileBytes, pair_rows, pairs, 1);
    }
  }
}

// A tile for rows w0 .. w0+nr-1, columns k0 .. k0+31 (zeros past K and past nr) into c.abuf.
void build_a(const Ctx& c, const uint8_t* w0, int nr, int64_t k0) {
  const int64_t valid = c.K - k0;
  const __mmask32 m32 = valid >= 32 ? ~static_cast<__mmask32>(0) : static_cast<__mmask32>((1u << valid) - 1);
  for (int r = 0; r < 16; ++r) {
    __m512i v = _mm512_setzero_si512();
    if (r < nr) {
      const uint8_t* p = w0 + r * c.ws + 2 * k0;
      if (c.type == GgmlType::BF16) {
        v = _mm512_maskz_loadu_epi16(m32, p);
      } else {  // F16: widen exactly, then one RNE rounding to bf16
        const __m256i lo = to_bf16(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(valid), p)));
        const __m256i hi = to_bf16(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(valid - 16), p + 32)));
        v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      }
    }
    _mm512_store_si512(c.abuf + r * 64, v);
  }
}

// C tile j holds Yᵀ: row r = W row nb0 + r, column i = X row 16j + i. Gather columns into Y rows.
void write_y(const Ctx& c, int mblocks, int64_t rows, int nr, int64_t nb0, float* y, int64_t ldy) {
  const __m512i c_rows = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(64));
  const __mmask16 nmask = mask16(nr);
  for (int j = 0; j < mblocks; ++j) {
    const uint8_t* ct = c.cbuf + j * kTileBytes;
    for (int64_t i = 0; i < 16 && 16 * j + i < rows; ++i) {
      const __m512 v = _mm512_i32gather_ps(c_rows, ct + 4 * i, 1);
      _mm512_mask_storeu_ps(y + (16 * j + i) * ldy + nb0, nmask, v);
    }
  }
}

// One A tile for step s: straight from W when the block is whole BF16 rows inside K, else built.
const uint8_t* a_tile(const Ctx& c, const uint8_t* w0, int nr, int64_t s, size_t* stride) {
  if (c.type == GgmlType::BF16 && nr == 16 && s < c.ksteps_full) {
    *stride = c.ws;
    return w0 + s * 64;
  }
  SPECD_COMPILER_BARRIER();  // the previous step's tile load of abuf stays before these stores
  build_a(c, w0, nr, s * 32);
  SPECD_COMPILER_BARRIER();
  *stride = 64;
  return c.abuf;
}

template <int MB>
void n_block(const Ctx& c, int64_t nb0, int nr, int64_t rows, float* y, int64_t ldy) {
  const uint8_t* w0 = c.base + nb0 * c.ws;
  TILE_ZERO(0);
  if constexpr (MB > 1) TILE_ZERO(1);
  if constexpr (MB > 2) TILE_ZERO(2);
  if constexpr (MB > 3) TILE_ZERO(3);
  for (int64_t s = 0; s < c.ksteps; ++s) {
    size_t stride;
    const uint8_t* a = a_tile(c, w0, nr, s, &stride);
    const uint8_t* b = c.pack + s * MB * kTileBytes;
    TILE_LOAD(4, a, stride);
    TILE_LOAD(5, b, 64);
    TILE_DP(0, 4, 5);
    if constexpr (MB > 1) { TILE_LOAD(6, b + kTileBytes, 64); TILE_DP(1, 4, 6); }
    if constexpr (MB > 2) { TILE_LOAD(7, b + 2 * kTileBytes, 64); TILE_DP(2, 4, 7); }
    if constexpr (MB > 3) { TILE_LOAD(5, b + 3 * kTileBytes, 64); TILE_DP(3, 4, 5); }
  }
  TILE_STORE(0, c.cbuf, 64);
  if constexpr (MB > 1) TILE_STORE(1, c.cbuf + kTileBytes, 64);
  if constexpr (MB > 2) TILE_STORE(2, c.cbuf + 2 * kTileBytes, 64);
  if constexpr (MB > 3) TILE_STORE(3, c.cbuf + 3 * kTileBytes, 64);
  SPECD_COMPILER_BARRIER();
  write_y(c, MB, rows, nr, nb0, y, ldy);
}

template <int MB>
void n_range(const Ctx& c, int64_t n0, int64_t n1, int64_t rows, float* y, int64_t ldy) {
  for (int64_t nb0 = n0; nb0 < n1; nb0 += 16) {
    const int nr = n1 - nb0 < 16 ? static_cast<int>(n1 - nb0) : 16;
    n_block<MB>(c, nb0, nr, rows, y, ldy);
  }
}

void range(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
           int64_t n0, int64_t n1) {
  Ctx c;
  c.type = w.type;
  c.base = static_cast<const uint8_t*>(w.data);
  c.ws = w.row_bytes;
  c.K = w.cols;
  c.ksteps = (w.cols + 31) / 32;
  c.ksteps_full = w.cols / 32;
  uint8_t* scratch = thread_scratch(static_cast<size_t>(c.ksteps * kMaxMBlocks + 5) * kTileBytes);
  c.abuf = scratch;
  c.cbuf = scratch + kTileBytes;
  c.pack = scratch + 5 * kTileBytes;
  tiles_begin();
  // X in super-blocks of 64 rows (4 C tiles); W streams once per super-block.
  for (int64_t i0 = 0; i0 < m; i0 += 16 * kMaxMBlocks) {
    const int64_t rows = m - i0 < 16 * kMaxMBlocks ? m - i0 : 16 * kMaxMBlocks;
    const int mblocks = static_cast<int>((rows + 15) / 16);
    pack_x(x + i0 * ldx, ldx, rows, c, mblocks);
    SPECD_COMPILER_BARRIER();
    float* yi = y + i0 * ldy;
    switch (mblocks) {
      case 1: n_range<1>(c, n0, n1, rows, yi, ldy); break;
      case 2: n_range<2>(c, n0, n1, rows, yi, ldy); break;
      case 3: n_range<3>(c, n0, n1, rows, yi, ldy); break;
      default: n_range<4>(c, n0, n1, rows, yi, ldy); break;
    }
  }
  tiles_end();
}

}  // namespace

#ifdef SPECD_AMX_EMULATE
void matmul_range_amx_emulated(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                               int64_t ldy, int64_t n0, int64_t n1) {
#else
void matmul_range_amx(const WeightView& w, const float* x, int64_t ldx, int64_t m, float* y,
                      int64_t ldy, int64_t n0, int64_t n1) {
#endif
  if (!bf16_types_supported(w.type)) return matmul_range_avx512(w, x, ldx, m, y, ldy, n0, n1);
  if (m <= 0 || n1 <= n0) return;
  range(w, x, ldx, m, y, ldy, n0, n1);
}

}  // namespace specd::kernels
