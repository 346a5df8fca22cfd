// The quantized matrix products (quant_matmul.h): the variant choice, packing, and the loops that
// hand tiles to a variant's tile kernel (quant_tiles.h).
//
// Loop order, per call: activation rows in chunks of up to kRowChunk, blocks in chunks of up to
// kBlockChunk (only k > 2048 has more than one), then the weight tiles, then the kernel's own
// passes over the chunk's activation rows. For decoding (a few rows) every tile is read from
// memory once per call and reused from L1 for every row; for prefill each chunk of rows reads
// the weights once more (they are compute bound there). None of these splits changes any
// output's arithmetic (a block chunk ends on the float it stores in y and the next resumes from
// it), which is what keeps the results batch invariant.
#include <cpuid.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "coproc/kernels/parallel.h"
#include "quant_tiles.h"

namespace coproc::kernels::cpu {
namespace {

using detail::kBlock;
using detail::kTileRows;

constexpr int64_t kRowChunk = 64;
constexpr int64_t kBlockChunk = 64;
// Work per thread, in tile-blocks x activation rows (one is 512 multiply-adds, or 320 bytes of
// Q4_1 weights streamed at one row): a piece under this costs more to hand to the pool (a few
// microseconds) than it saves.
constexpr int64_t kMinTaskWork = 2048;

// By CPUID rather than has_f16c(), which clang 14 (the fuzz preset) does not know.
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & (1u << 29)) != 0;  // CPUID.(EAX=1):ECX[29] = F16C
}

bool has_avx_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (eax & (1u << 4)) != 0;  // CPUID.(EAX=7, ECX=1):EAX[4] = AVX-VNNI
}

bool has_avx512_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & (1u << 11)) != 0;  // CPUID.(EAX=7, ECX=0):ECX[11] = AVX512_VNNI
}

using TileFn = void (*)(const detail::TileJob&);

TileFn tile_fn(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::kPortable:
      return detail::tile_portable;
    case QuantIsa::kAvx2:
      return detail::tile_avx2;
    case QuantIsa::kAvxVnni:
      return detail::tile_avxvnni;
    case QuantIsa::kAvx512Vnni:
      return detail::tile_avx512vnni;
  }
  return detail::tile_portable;
}

// Copies block range [b0, b0 + blocks) of plain rows [row_begin, row_end) (inside tile `tile`)
// into the packed tile layout at out; the tile's other rows are zero.
void pack_tile(QuantWeight type, const uint8_t* w, int64_t nb, int64_t tile, int64_t row_begin,
               int64_t row_end, int64_t b0, int64_t blocks, uint8_t* out) {
  const int64_t bb = detail::block_bytes(type);
  const int64_t step = detail::tile_block_bytes(type);
  const int64_t quants = detail::quants_offset(type);
  const int64_t groups = type == QuantWeight::kQ8_0 ? 8 : 4;
  const int64_t head = type == QuantWeight::kQ4_1 ? 4 : 2;  // d (and m) bytes before the quants
  std::memset(out, 0, static_cast<size_t>(blocks * step));
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t r = row - tile * kTileRows;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* src = w + (row * nb + b0 + b) * bb;
      uint8_t* dst = out + b * step;
      std::memcpy(dst + 2 * r, src, 2);
      if (type == QuantWeight::kQ4_1) std::memcpy(dst + detail::kMinOffset + 2 * r, src + 2, 2);
      for (int64_t g = 0; g < groups; ++g) {
        std::memcpy(dst + quants + g * detail::kGroupBytes + 4 * r, src + head + 4 * g, 4);
      }
    }
  }
}

// quant_matmul_rows and quant_matmul_packed_rows: w is plain (repacked a tile at a time into a
// stack buffer) or packed.
void run_rows(QuantIsa isa, QuantWeight type, const uint8_t* w, bool plain, int64_t n_begin,
              int64_t n_end, int64_t k, const BlockQ8A* x, int64_t m, float* y, int64_t ldy) {
  assert(k % kBlock == 0 && n_begin <= n_end && quant_isa_available(isa));
  if (n_begin >= n_end || m <= 0) return;
  const int64_t nb = k / kBlock;
  const int64_t step = detail::tile_block_bytes(type);
  const TileFn fn = tile_fn(isa);
  int32_t sums[kRowChunk * kBlockChunk];
  alignas(64) uint8_t tile_buf[kBlockChunk * detail::tile_block_bytes(QuantWeight::kQ8_0)];

  for (int64_t i0 = 0; i0 < m; i0 += kRowChunk) {
    const int64_t rows = std::min(kRowChunk, m - i0);
    for (int64_t b0 = 0; b0 < nb; b0 += kBlockChunk) {
      const int64_t blocks = std::min(kBlockChunk, nb - b0);
      if (detail::needs_sums(type)) {
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t b = 0; b < blocks; ++b) {
            const int8_t* q = x[(i0 + r) * nb + b0 + b].q;
            int32_t s = 0;
            for (int e = 0; e < kBlock; ++e) s += q[e];
            sums[r * kBlockChunk + b] = s;
          }
        }
      }
      for (int64_t t = n_begin / kTileRows; t * kTileRows < n_end; ++t) {
        const int64_t row0 = t * kTileRows;
        const int64_t row_begin = std::max(row0, n_begin);
        const int64_t row_end = std::min(row0 + kTileRows, n_end);
        const uint8_t* tile;
        if (plain) {
          pack_tile(type, w, nb, t, row_begin, row_end, b0, blocks, tile_buf);
          tile = tile_buf;
        } else {
          tile = w + (t * nb + b0) * step;
        }
        detail::TileJob job{};
        job.type = type;
        job.tile = tile;
        job.blocks = blocks;
        job.x = x + i0 * nb + b0;
        job.x_stride = nb;
        job.sums = sums;
        job.sums_stride = kBlockChunk;
        job.rows = rows;
        job.y = y + i0 * ldy + row0;
        job.ldy = ldy;
        job.lane_begin = static_cast<int>(row_begin - row0);
        job.lane_end = static_cast<int>(row_end - row0);
        job.accumulate = b0 > 0;
        fn(job);
      }
    }
  }
}

// Splits the tiles of n rows over the intra-op threads, whole tiles per thread.
void run_parallel(QuantWeight type, const uint8_t* w, bool plain, int64_t n, int64_t k,
                  const BlockQ8A* x, int64_t m, float* y, int64_t ldy) {
  const QuantIsa isa = best_quant_isa();
  const int64_t tiles = (n + kTileRows - 1) / kTileRows;
  const int64_t work_per_tile = std::max<int64_t>(1, (k / kBlock) * m);
  const int64_t grain = std::max<int64_t>(1, kMinTaskWork / work_per_tile);
  parallel_for(tiles, grain, [&](int64_t begin, int64_t end) {
    run_rows(isa, type, w, plain, begin * kTileRows, std::min(end * kTileRows, n), k, x, m, y, ldy);
  });
}

}  // namespace

bool quant_isa_available(QuantIsa isa) {
  // libgcc's checks include the OS's support (XCR0) for the wider registers.
  __builtin_cpu_init();
  switch (isa) {
    case QuantIsa::kPortable:
      return true;
    case QuantIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && has_f16c();
    case QuantIsa::kAvxVnni:
      return __builtin_cpu_supports("avx2") && has_f16c() && has_avx_vnni();
    case QuantIsa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             has_avx512_vnni();
  }
  return false;
}

QuantIsa best_quant_isa() {
  static const QuantIsa best = [] {
    for (const QuantIsa isa : {QuantIsa::kAvx512Vnni, QuantIsa::kAvxVnni, QuantIsa::kAvx2}) {
      if (quant_isa_available(isa)) return isa;
    }
    return QuantIsa::kPortable;
  }();
  return best;
}

const char* quant_isa_name(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::kPortable:
      return "portable";
    case QuantIsa::kAvx2:
      return "avx2";
    case QuantIsa::kAvxVnni:
      return "avx-vnni";
    case QuantIsa::kAvx512Vnni:
      return "avx512-vnni";
  }
  return "?";
}

void quantize_q8a_with(QuantIsa isa, const float* x, int64_t k, BlockQ8A* out) {
  assert(k % kBlock == 0 && quant_isa_available(isa));
  switch (isa) {
    case QuantIsa::kPortable:
      return detail::quantize_portable(x, k, out);
    case QuantIsa::kAvx2:
    case QuantIsa::kAvxVnni:
      return detail::quantize_avx2(x, k, out);
    case QuantIsa::kAvx512Vnni:
      return detail::quantize_avx512(x, k, out);
  }
}

void quantize_q8a(const float* x, int64_t k, BlockQ8A* out) {
  quantize_q8a_with(best_quant_isa(), x, k, out);
}

int64_t quant_packed_bytes(QuantWeight type, int64_t n, int64_t k) {
  const int64_t tiles = (n + kTileRows - 1) / kTileRows;
  return tiles * (k / kBlock) * detail::tile_block_bytes(type);
}

void quant_pack(QuantWeight type, const void* w, int64_t n, int64_t k, void* packed) {
  assert(k % kBlock == 0 && n >= 0);
  const int64_t nb = k / kBlock;
  const int64_t tiles = (n + kTileRows - 1) / kTileRows;
  auto* out = static_cast<uint8_t*>(packed);
  for (int64_t t = 0; t < tiles; ++t) {
    pack_tile(type, static_cast<const uint8_t*>(w), nb, t, t * kTileRows,
              std::min((t + 1) * kTileRows, n), 0, nb,
              out + t * nb * detail::tile_block_bytes(type));
  }
}

void quant_matmul(QuantWeight type, const void* w, int64_t n, int64_t k, const BlockQ8A* x,
                  int64_t m, float* y, int64_t ldy) {
  run_parallel(type, static_cast<const uint8_t*>(w), true, n, k, x, m, y, ldy);
}

void quant_matmul_rows(QuantIsa isa, QuantWeight type, const void* w, int64_t n_begin,
                       int64_t n_end, int64_t k, const BlockQ8A* x, int64_t m, float* y,
                       int64_t ldy) {
  run_rows(isa, type, static_cast<const uint8_t*>(w), true, n_begin, n_end, k, x, m, y, ldy);
}

void quant_matmul_packed(QuantWeight type, const void* packed, int64_t n, int64_t k,
                         const BlockQ8A* x, int64_t m, float* y, int64_t ldy) {
  run_parallel(type, static_cast<const uint8_t*>(packed), false, n, k, x, m, y, ldy);
}

void quant_matmul_packed_rows(QuantIsa isa, QuantWeight type, const void* packed, int64_t n_begin,
                              int64_t n_end, int64_t k, const BlockQ8A* x, int64_t m, float* y,
                              int64_t ldy) {
  run_rows(isa, type, static_cast<const uint8_t*>(packed), false, n_begin, n_end, k, x, m, y, ldy);
}

}  // namespace coproc::kernels::cpu
