// GEMM on packed weights: PackedB, the choice of micro-kernel variant, the blocking loops around
// the tiles (gemm_tiles.h), and the portable tiles for CPUs without AVX2.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>

#include "coproc/kernels/cpu.h"
#include "coproc/kernels/parallel.h"
#include "gemm_tiles.h"

namespace coproc::kernels::cpu {
namespace {

using detail::Epilogue;
using detail::TileKernel;

constexpr std::align_val_t kPackedAlignment{64};  // bytes: a cache line, and a zmm load

// Rows of a panel per pass over the rows of A (the k blocking). A tile's slice of A, kMr rows x
// kBlockDepth floats (24 to 32 KiB), stays in L1 for the whole pass; every pass after the first
// reads and writes C once more. On the MLP (k <= 1024: one pass), passes of 256 ran 3-5% slower
// from batch 8 up, where the AVX-512 tiles run within 8% of the FMA units' peak.
constexpr int64_t kBlockDepth = 1024;

// ---------------------------------------------------------------- portable tiles

// Four floats in an SSE2 register, the x86-64 baseline, as a GCC/Clang vector type: GCC
// vectorises plain loops over a 16-float row along k instead, with shuffles, 5x slower.
using Vec4 = float __attribute__((vector_size(16)));
constexpr int kVec4Lanes = 4;

// 2 rows x 16 columns: 8 accumulators, 4 panel registers and a broadcast of the 16 xmm.
constexpr int kPortableMr = 2;
constexpr int kPortableNr = 16;
constexpr int kPortableVecs = kPortableNr / kVec4Lanes;

Vec4 load4(const float* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int R>
void portable_tile(int64_t k, const float* a, int64_t lda, const float* panel, int64_t cols,
                   const Epilogue& e, float* c, int64_t ldc) {
  Vec4 acc[R][kPortableVecs] = {};
  for (int64_t p = 0; p < k; ++p) {
    Vec4 b[kPortableVecs];
    for (int v = 0; v < kPortableVecs; ++v) b[v] = load4(panel + p * kPortableNr + v * kVec4Lanes);
    for (int r = 0; r < R; ++r) {
      const float x = a[r * lda + p];
      for (int v = 0; v < kPortableVecs; ++v) acc[r][v] += x * b[v];
    }
  }
  const Epilogue local = e;  // C may not alias it, but the compiler cannot know
  for (int r = 0; r < R; ++r) {
    float row[kPortableNr];
    std::memcpy(row, acc[r], sizeof(row));
    float* out = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      float v = local.alpha * row[j];
      if (local.beta != 0.0f) v += local.beta * out[j];
      if (local.bias != nullptr) v += local.bias[j];
      out[j] = v;
    }
  }
}

template <int R>
void portable_tile_rows(int rows, int64_t k, const float* a, int64_t lda, const float* panel,
                        int64_t cols, const Epilogue& e, float* c, int64_t ldc) {
  if constexpr (R > 1) {
    if (rows < R) return portable_tile_rows<R - 1>(rows, k, a, lda, panel, cols, e, c, ldc);
  }
  portable_tile<R>(k, a, lda, panel, cols, e, c, ldc);
}

const TileKernel& tiles_of(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::kAvx512:
      return detail::kAvx512Tiles;
    case GemmKernel::kAvx2:
      return detail::kAvx2Tiles;
    case GemmKernel::kPortable:
      break;
  }
  return detail::kPortableTiles;
}

int64_t panels(int64_t n, int64_t nr) { return (n + nr - 1) / nr; }

// C = beta * C + bias for the degenerate k == 0 product.
void scale_rows(int64_t m, int64_t n, float beta, const float* bias, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) {
      const float kept = beta == 0.0f ? 0.0f : beta * row[j];
      row[j] = bias != nullptr ? kept + bias[j] : kept;
    }
  }
}

}  // namespace

namespace detail {
const TileKernel kPortableTiles = {kPortableMr, kPortableNr, &portable_tile_rows<kPortableMr>};
}  // namespace detail

const char* gemm_kernel_name(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::kAvx512:
      return "avx512";
    case GemmKernel::kAvx2:
      return "avx2";
    case GemmKernel::kPortable:
      return "portable";
  }
  return "?";
}

bool gemm_kernel_supported(GemmKernel kernel) {
  // libgcc's checks include the OS's support (XCR0) for the wider registers.
  __builtin_cpu_init();
  switch (kernel) {
    case GemmKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case GemmKernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmKernel::kPortable:
      return true;
  }
  return false;
}

GemmKernel best_gemm_kernel() {
  static const GemmKernel best = [] {
    for (const GemmKernel kernel : kAllGemmKernels) {
      if (gemm_kernel_supported(kernel)) return kernel;
    }
    return GemmKernel::kPortable;
  }();
  return best;
}

void PackedB::AlignedDelete::operator()(float* p) const {
  ::operator delete[](p, kPackedAlignment);
}

std::size_t PackedB::bytes() const {
  return static_cast<std::size_t>(panels(n_, nr_) * k_ * nr_) * sizeof(float);
}

PackedB PackedB::pack(const float* b, int64_t k, int64_t n, bool trans_b, GemmKernel kernel) {
  assert(k >= 0 && n >= 0);
  assert(gemm_kernel_supported(kernel));
  PackedB packed;
  packed.k_ = k;
  packed.n_ = n;
  packed.nr_ = tiles_of(kernel).nr;
  packed.kernel_ = kernel;
  const std::size_t bytes = packed.bytes();
  if (bytes == 0) return packed;
  packed.data_.reset(static_cast<float*>(::operator new[](bytes, kPackedAlignment)));
  float* const out = packed.data_.get();
  std::memset(out, 0, bytes);  // the padding columns of the last panel

  const int64_t nr = packed.nr_;
  for (int64_t j = 0; j < panels(n, nr); ++j) {
    float* panel = out + j * k * nr;
    const int64_t first = j * nr;
    const int64_t cols = std::min(nr, n - first);
    if (trans_b) {  // B is [n, k]: column `first + col` of op(B) is row `first + col` of B
      for (int64_t col = 0; col < cols; ++col) {
        const float* src = b + (first + col) * k;
        for (int64_t p = 0; p < k; ++p) panel[p * nr + col] = src[p];
      }
    } else {
      for (int64_t p = 0; p < k; ++p) {
        std::memcpy(panel + p * nr, b + p * n + first,
                    static_cast<std::size_t>(cols) * sizeof(float));
      }
    }
  }
  return packed;
}

void gemm_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                 float alpha, float beta, const float* bias) {
  const int64_t n = b.n();
  const int64_t k = b.k();
  assert(m >= 0);
  assert(lda >= std::max<int64_t>(1, k));
  assert(ldc >= std::max<int64_t>(1, n));
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_rows(m, n, beta, bias, c, ldc);
    return;
  }
  const TileKernel& tiles = tiles_of(b.kernel());
  const int64_t nr = tiles.nr;
  // Blocks of rows, then passes over k, then panels, then tiles down the block: within a block,
  // each slice of a panel is read from memory once and from cache by the block's other tiles.
  const auto rows = [&](int64_t row_begin, int64_t row_end) {
    for (int64_t block = row_begin; block < row_end; block += kMaxBlockRows) {
      const int64_t block_end = std::min(row_end, block + kMaxBlockRows);
      for (int64_t p0 = 0; p0 < k; p0 += kBlockDepth) {
        const int64_t depth = std::min(kBlockDepth, k - p0);
        // The first pass applies beta and the bias; later passes add to what it wrote.
        Epilogue e{alpha, p0 == 0 ? beta : 1.0f, nullptr};
        for (int64_t j = 0; j < panels(n, nr); ++j) {
          const float* panel = b.data() + (j * k + p0) * nr;
          const int64_t cols = std::min(nr, n - j * nr);
          e.bias = p0 == 0 && bias != nullptr ? bias + j * nr : nullptr;
          for (int64_t i = block; i < block_end; i += tiles.mr) {
            const auto r = static_cast<int>(std::min<int64_t>(tiles.mr, block_end - i));
            tiles.tile(r, depth, a + i * lda + p0, lda, panel, cols, e, c + i * ldc + j * nr, ldc);
          }
        }
      }
    }
  };
  // Split the rows over the intra-op pool (in whole tiles) when each share is worth a wake-up:
  // about a million multiply-adds or more.
  const int64_t tiles_down = (m + tiles.mr - 1) / tiles.mr;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, tiles.mr * n * k));
  parallel_for(tiles_down, grain, [&](int64_t t0, int64_t t1) {
    rows(t0 * tiles.mr, std::min(m, t1 * tiles.mr));
  });
}

}  // namespace coproc::kernels::cpu
