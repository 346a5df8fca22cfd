// The micro-kernels behind gemm_packed (gemm_packed.cc), one set per GemmKernel variant. Private
// to the CPU kernels.
//
// A tile computes rows x cols of C (rows <= mr, cols <= nr) from rows of A, read in place with
// row stride lda, and k rows of one packed panel of B (nr floats each, contiguous, zero-padded past
// the matrix's last column). The accumulators stay in registers for the whole k loop; C is touched
// once, in the epilogue. Each variant lives in its own file, compiled for its instruction set with
// function-level target attributes only, so the rest of the library runs on any x86-64.
#pragma once

#include <cstdint>

namespace coproc::kernels::cpu::detail {

// What a tile writes: C = alpha * acc + beta * C + bias[col]. With beta == 0, C is not read (NaN
// in it is ignored). bias is nullptr or points at the tile's first column.
struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* bias = nullptr;
};

using TileFn = void (*)(int rows, int64_t k, const float* a, int64_t lda, const float* panel,
                        int64_t cols, const Epilogue& epilogue, float* c, int64_t ldc);

struct TileKernel {
  int mr;  // most rows of one tile
  int nr;  // the panel width in floats: PackedB's layout
  TileFn tile;
};

extern const TileKernel kAvx512Tiles;    // gemm_avx512.cc
extern const TileKernel kAvx2Tiles;      // gemm_avx2.cc
extern const TileKernel kPortableTiles;  // gemm_packed.cc

// Independent accumulator sets per row of a tile, splitting the k loop: the FMA latency (4 cycles,
// 2 pipes on current x86 cores) needs about 8 independent chains, and a tile of few rows has too
// few otherwise (a batch of one would run at a quarter of the FMA rate).
template <int R>
constexpr int k_split() {
  return R >= 4 ? 1 : R >= 2 ? 2 : 4;
}

}  // namespace coproc::kernels::cpu::detail
