// AVX2 + FMA tiles for gemm_packed: up to kMr rows x 16 columns, two ymm accumulators per row.
// kMr = 6 is the classic shape for 16 ymm registers: 12 accumulators, 2 panel registers and a
// broadcast.
#include <immintrin.h>

#include "gemm_tiles.h"

#define COPROC_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace coproc::kernels::cpu::detail {
namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;
constexpr int kLanes = 8;

// As in gemm_avx512.cc: tiles of few rows prefetch the panel (one line per step of k) 2 KiB
// ahead.
constexpr int kMaxPrefetchRows = 3;
constexpr int64_t kPrefetchSteps = 32;

// All-ones in the lanes of a ymm half that hold one of `cols` columns starting `offset` into the
// tile.
COPROC_TARGET_AVX2 __m256i lane_mask(int64_t cols, int64_t offset) {
  const int64_t n = cols - offset;
  const int live = n >= kLanes ? kLanes : n <= 0 ? 0 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(live), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// out[0, lanes) = alpha * acc + beta * out + bias, for the lanes in mask; `first` is the tile
// column of lane 0.
COPROC_TARGET_AVX2 inline void finish(__m256 acc, __m256i mask, const Epilogue& e, int first,
                                      float* out) {
  __m256 v = _mm256_mul_ps(acc, _mm256_set1_ps(e.alpha));
  if (e.beta != 0.0f) {
    v = _mm256_fmadd_ps(_mm256_set1_ps(e.beta), _mm256_maskload_ps(out + first, mask), v);
  }
  if (e.bias != nullptr) v = _mm256_add_ps(v, _mm256_maskload_ps(e.bias + first, mask));
  _mm256_maskstore_ps(out + first, mask, v);
}

template <int R>
COPROC_TARGET_AVX2 void tile(int64_t k, const float* a, int64_t lda, const float* panel,
                             int64_t cols, const Epilogue& e, float* c, int64_t ldc) {
  constexpr int kSplit = k_split<R>();
  __m256 acc[kSplit][R][2];
#pragma GCC unroll 32
  for (int u = 0; u < kSplit; ++u) {
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) acc[u][r][0] = acc[u][r][1] = _mm256_setzero_ps();
  }
  const float* rows[R];
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r) rows[r] = a + r * lda;

  int64_t p = 0;
  for (; p + kSplit <= k; p += kSplit) {
#pragma GCC unroll 32
    for (int u = 0; u < kSplit; ++u) {
      if constexpr (R <= kMaxPrefetchRows) {
        _mm_prefetch(reinterpret_cast<const char*>(panel + (p + u + kPrefetchSteps) * kNr),
                     _MM_HINT_T0);
      }
      const __m256 b0 = _mm256_loadu_ps(panel + (p + u) * kNr);
      const __m256 b1 = _mm256_loadu_ps(panel + (p + u) * kNr + kLanes);
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) {
        const __m256 x = _mm256_broadcast_ss(rows[r] + p + u);
        acc[u][r][0] = _mm256_fmadd_ps(x, b0, acc[u][r][0]);
        acc[u][r][1] = _mm256_fmadd_ps(x, b1, acc[u][r][1]);
      }
    }
  }
  for (; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(panel + p * kNr);
    const __m256 b1 = _mm256_loadu_ps(panel + p * kNr + kLanes);
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(rows[r] + p);
      acc[0][r][0] = _mm256_fmadd_ps(x, b0, acc[0][r][0]);
      acc[0][r][1] = _mm256_fmadd_ps(x, b1, acc[0][r][1]);
    }
  }
#pragma GCC unroll 32
  for (int u = 1; u < kSplit; ++u) {
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      acc[0][r][0] = _mm256_add_ps(acc[0][r][0], acc[u][r][0]);
      acc[0][r][1] = _mm256_add_ps(acc[0][r][1], acc[u][r][1]);
    }
  }

  // Masked loads and stores: lanes past `cols` are neither read nor written (and cannot fault).
  // The halves are spelled out: indexing acc by a run-time half would keep it in memory.
  const __m256i mask0 = lane_mask(cols, 0);
  const __m256i mask1 = lane_mask(cols, kLanes);
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
COPROC_TARGET_AVX2 void tile_rows(int rows, int64_t k, const float* a, int64_t lda,
                                  const float* panel, int64_t cols, const Epilogue& e, float* c,
                                  int64_t ldc) {
  if constexpr (R > 1) {
    if (rows < R) return tile_rows<R - 1>(rows, k, a, lda, panel, cols, e, c, ldc);
  }
  tile<R>(k, a, lda, panel, cols, e, c, ldc);
}

}  // namespace

const TileKernel kAvx2Tiles = {kMr, kNr, &tile_rows<kMr>};

}  // namespace coproc::kernels::cpu::detail
