// The portable variant: plain C++ over the packed tiles, any x86-64 (or other) CPU. Each block of
// a tile is unpacked once into 16 rows of 32 int8 and applied to up to kRowsPerPass activation
// rows; the 32-element dot products are written so that the compiler vectorises them.
// Built with -ffp-contract=off (CMakeLists.txt): the float steps must be the separate multiplies
// and adds that every variant does (quant_matmul.h).
#include <algorithm>
#include <cmath>

#include "quant_tiles.h"

namespace coproc::kernels::cpu::detail {
namespace {

constexpr int kRowsPerPass = 4;

// The tile's block as int8 weights w[row][element] (kQ4_0: nibble - 8 is NOT applied here; the
// offset is taken off the integer sum like the SIMD variants do, which gives the same integer).
void unpack(QuantWeight type, const uint8_t* block, int8_t (*w)[kBlock]) {
  const uint8_t* q = block + quants_offset(type);
  if (type == QuantWeight::kQ8_0) {
    for (int g = 0; g < 8; ++g) {
      for (int r = 0; r < kTileRows; ++r) {
        for (int e = 0; e < 4; ++e)
          w[r][4 * g + e] = static_cast<int8_t>(q[g * kGroupBytes + 4 * r + e]);
      }
    }
    return;
  }
  for (int g = 0; g < 4; ++g) {
    for (int r = 0; r < kTileRows; ++r) {
      for (int e = 0; e < 4; ++e) {
        const uint8_t byte = q[g * kGroupBytes + 4 * r + e];
        w[r][4 * g + e] = static_cast<int8_t>(byte & 0x0F);
        w[r][16 + 4 * g + e] = static_cast<int8_t>(byte >> 4);
      }
    }
  }
}

int32_t dot32(const int8_t* w, const int8_t* x) {
  int32_t sum = 0;
  for (int e = 0; e < kBlock; ++e) sum += static_cast<int32_t>(w[e]) * static_cast<int32_t>(x[e]);
  return sum;
}

}  // namespace

void tile_portable(const TileJob& job) {
  const int64_t step = tile_block_bytes(job.type);
  const int32_t offset = job.type == QuantWeight::kQ4_0 ? 8 : 0;
  alignas(64) int8_t w[kTileRows][kBlock];
  float dw[kTileRows];
  float mw[kTileRows];
  for (int64_t i0 = 0; i0 < job.rows; i0 += kRowsPerPass) {
    const int64_t rows = std::min<int64_t>(kRowsPerPass, job.rows - i0);
    float acc[kRowsPerPass][kTileRows];
    for (int64_t r = 0; r < rows; ++r) {
      for (int l = 0; l < kTileRows; ++l) {
        acc[r][l] = job.accumulate && l >= job.lane_begin && l < job.lane_end
                        ? job.y[(i0 + r) * job.ldy + l]
                        : 0.0f;
      }
    }
    for (int64_t b = 0; b < job.blocks; ++b) {
      const uint8_t* block = job.tile + b * step;
      unpack(job.type, block, w);
      for (int l = 0; l < kTileRows; ++l) {
        dw[l] = half_to_float(load_u16(block + 2 * l));
        if (job.type == QuantWeight::kQ4_1)
          mw[l] = half_to_float(load_u16(block + kMinOffset + 2 * l));
      }
      for (int64_t r = 0; r < rows; ++r) {
        const BlockQ8A& xb = job.x[(i0 + r) * job.x_stride + b];
        const int32_t bias =
            needs_sums(job.type) ? offset * job.sums[(i0 + r) * job.sums_stride + b] : 0;
        for (int l = 0; l < kTileRows; ++l) {
          const int32_t isum = dot32(w[l], xb.q) - bias;
          const float dd = dw[l] * xb.d;
          acc[r][l] = acc[r][l] + dd * static_cast<float>(isum);
          if (job.type == QuantWeight::kQ4_1) acc[r][l] = acc[r][l] + mw[l] * xb.s;
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      for (int l = job.lane_begin; l < job.lane_end; ++l) job.y[(i0 + r) * job.ldy + l] = acc[r][l];
    }
  }
}

void quantize_portable(const float* x, int64_t k, BlockQ8A* out) {
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0.0f;
    for (int e = 0; e < kBlock; ++e) {
      const float a = std::fabs(xb[e]);
      amax = a > amax ? a : amax;  // a NaN never wins, as with maxps(a, amax)
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int e = 0; e < kBlock; ++e) {
      const float r = std::nearbyint(xb[e] * id);
      const int32_t q = r >= -127.0f && r <= 127.0f ? static_cast<int32_t>(r) : 0;
      out[b].q[e] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].s = d * static_cast<float>(sum);
  }
}

}  // namespace coproc::kernels::cpu::detail
