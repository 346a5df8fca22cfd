// What the quantized matrix kernels share: the packed tile layout (quant_matmul.h) and the
// interface of the per-variant tile kernels that quant_matmul.cc drives.
#pragma once

#include <cstdint>
#include <cstring>

#include "coproc/kernels/half.h"
#include "coproc/kernels/quant_matmul.h"

namespace coproc::kernels::cpu::detail {

inline constexpr int kTileRows = static_cast<int>(kQuantTileRows);
inline constexpr int kBlock = 32;  // elements per quantized block

// Bytes of one row's block in the plain (ggml) layout.
constexpr int64_t block_bytes(QuantWeight type) {
  return type == QuantWeight::kQ4_0 ? 18 : type == QuantWeight::kQ4_1 ? 20 : 34;
}
// Bytes of one block of a whole tile: 16 rows' blocks.
constexpr int64_t tile_block_bytes(QuantWeight type) { return kTileRows * block_bytes(type); }
// Offsets inside a tile's block: scales d at 0, mins (kQ4_1) at kMinOffset, the quant groups at
// quants_offset(), each group kGroupBytes.
inline constexpr int64_t kMinOffset = 2 * kTileRows;
inline constexpr int64_t kGroupBytes = 4 * kTileRows;
constexpr int64_t quants_offset(QuantWeight type) {
  return type == QuantWeight::kQ4_1 ? 4 * kTileRows : 2 * kTileRows;
}
// Whether the kernels need each activation block's sum of q: the kQ4_0 offset of 8 and the bias
// of 128 that turns kQ8_0 weights unsigned for vpdpbusd are subtracted as (offset * sum of q).
constexpr bool needs_sums(QuantWeight type) { return type != QuantWeight::kQ4_1; }

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One call of a tile kernel: the outputs of one tile of weight rows (lanes [lane_begin,
// lane_end) of it are stored) for `rows` activation rows, over `blocks` blocks. With accumulate,
// each output continues from the value in y (the same float the previous block range ended on,
// so splitting the blocks changes nothing); otherwise it starts from 0.
struct TileJob {
  QuantWeight type;
  const uint8_t* tile;  // the tile's first block of the range
  int64_t blocks;
  const BlockQ8A* x;    // activation row 0's first block of the range
  int64_t x_stride;     // blocks from one activation row to the next
  const int32_t* sums;  // sum of q of x's blocks, row r at sums + r * sums_stride (needs_sums)
  int64_t sums_stride;
  int64_t rows;
  float* y;  // output of activation row 0, tile lane 0
  int64_t ldy;
  int lane_begin;
  int lane_end;
  bool accumulate;
};

void tile_portable(const TileJob& job);
void tile_avx2(const TileJob& job);
void tile_avxvnni(const TileJob& job);
void tile_avx512vnni(const TileJob& job);

void quantize_portable(const float* x, int64_t k, BlockQ8A* out);
void quantize_avx2(const float* x, int64_t k, BlockQ8A* out);
void quantize_avx512(const float* x, int64_t k, BlockQ8A* out);

}  // namespace coproc::kernels::cpu::detail
