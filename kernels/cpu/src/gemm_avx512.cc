// AVX-512 tiles for gemm_packed: up to kMr rows x 32 columns, two zmm accumulators per row. Per
// step of k: two loads of the panel, one broadcast per row, two FMAs per row. kMr = 8 gives 16
// accumulators (plus 2 panel registers and a broadcast, 19 of 32 zmm) and 10 loads per 16 FMAs.
// On Zen 5 the MLP's layers run at 210-225 GFLOP/s from batch 8 up, about 92% of what a loop of
// independent FMAs reaches (239); kMr = 12 measured the same within noise, and 8 divides the
// usual batch sizes (8, 16, 32, 64) with no tail tile. Only AVX-512F is needed (masks, zmm).
#include <immintrin.h>

#include "gemm_tiles.h"

#define COPROC_TARGET_AVX512 __attribute__((target("avx512f,fma")))

namespace coproc::kernels::cpu::detail {
namespace {

constexpr int kMr = 8;
constexpr int kNr = 32;
constexpr int kLanes = 16;

// Tiles of up to kMaxPrefetchRows rows do too little work per panel byte for the hardware
// prefetchers to keep up when the panel comes from L3 (a batch of 1 to 4: 49 instead of 62 us
// for the MLP); they prefetch the panel kPrefetchSteps steps of k (2 KiB) ahead. A prefetch never
// faults, so running past the panel's end is harmless.
constexpr int kMaxPrefetchRows = 4;
constexpr int64_t kPrefetchSteps = 16;

// The lanes of a zmm half that hold one of `cols` columns starting `offset` into the tile.
COPROC_TARGET_AVX512 __mmask16 lane_mask(int64_t cols, int64_t offset) {
  const int64_t n = cols - offset;
  if (n >= kLanes) return static_cast<__mmask16>(0xFFFF);
  return n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1u);
}

// out[0, lanes) = alpha * acc + beta * out + bias, for the lanes in mask; `first` is the tile
// column of lane 0.
COPROC_TARGET_AVX512 inline void finish(__m512 acc, __mmask16 mask, const Epilogue& e, int first,
                                        float* out) {
  __m512 v = _mm512_mul_ps(acc, _mm512_set1_ps(e.alpha));
  if (e.beta != 0.0f) {
    v = _mm512_fmadd_ps(_mm512_set1_ps(e.beta), _mm512_maskz_loadu_ps(mask, out + first), v);
  }
  if (e.bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, e.bias + first));
  _mm512_mask_storeu_ps(out + first, mask, v);
}

template <int R>
COPROC_TARGET_AVX512 void tile(int64_t k, const float* a, int64_t lda, const float* panel,
                               int64_t cols, const Epilogue& e, float* c, int64_t ldc) {
  constexpr int kSplit = k_split<R>();
  __m512 acc[kSplit][R][2];
#pragma GCC unroll 32
  for (int u = 0; u < kSplit; ++u) {
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) acc[u][r][0] = acc[u][r][1] = _mm512_setzero_ps();
  }
  const float* rows[R];
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r) rows[r] = a + r * lda;

  int64_t p = 0;
  for (; p + kSplit <= k; p += kSplit) {
#pragma GCC unroll 32
    for (int u = 0; u < kSplit; ++u) {
      if constexpr (R <= kMaxPrefetchRows) {
        const float* ahead = panel + (p + u + kPrefetchSteps) * kNr;
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + kLanes), _MM_HINT_T0);
      }
      const __m512 b0 = _mm512_loadu_ps(panel + (p + u) * kNr);
      const __m512 b1 = _mm512_loadu_ps(panel + (p + u) * kNr + kLanes);
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) {
        const __m512 x = _mm512_set1_ps(rows[r][p + u]);
        acc[u][r][0] = _mm512_fmadd_ps(x, b0, acc[u][r][0]);
        acc[u][r][1] = _mm512_fmadd_ps(x, b1, acc[u][r][1]);
      }
    }
  }
  for (; p < k; ++p) {
    const __m512 b0 = _mm512_loadu_ps(panel + p * kNr);
    const __m512 b1 = _mm512_loadu_ps(panel + p * kNr + kLanes);
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(rows[r][p]);
      acc[0][r][0] = _mm512_fmadd_ps(x, b0, acc[0][r][0]);
      acc[0][r][1] = _mm512_fmadd_ps(x, b1, acc[0][r][1]);
    }
  }
#pragma GCC unroll 32
  for (int u = 1; u < kSplit; ++u) {
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      acc[0][r][0] = _mm512_add_ps(acc[0][r][0], acc[u][r][0]);
      acc[0][r][1] = _mm512_add_ps(acc[0][r][1], acc[u][r][1]);
    }
  }

  // Masked loads and stores: lanes past `cols` are neither read nor written (and cannot fault).
  // The halves are spelled out: indexing acc by a run-time half would keep it in memory.
  const __mmask16 mask0 = lane_mask(cols, 0);
  const __mmask16 mask1 = lane_mask(cols, kLanes);
  const Epilogue local = e;  // C may not alias it, but the compiler cannot know
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r) {
    float* out = c + r * ldc;
    finish(acc[0][r][0], mask0, local, 0, out);
    if (cols > kLanes) finish(acc[0][r][1], mask1, local, kLanes, out);
  }
}

// rows <= R: the tile instantiated for exactly `rows` rows.
template <int R>
COPROC_TARGET_AVX512 void tile_rows(int rows, int64_t k, const float* a, int64_t lda,
                                    const float* panel, int64_t cols, const Epilogue& e, float* c,
                                    int64_t ldc) {
  if constexpr (R > 1) {
    if (rows < R) return tile_rows<R - 1>(rows, k, a, lda, panel, cols, e, c, ldc);
  }
  tile<R>(k, a, lda, panel, cols, e, c, ldc);
}

}  // namespace

const TileKernel kAvx512Tiles = {kMr, kNr, &tile_rows<kMr>};

}  // namespace coproc::kernels::cpu::detail
