// Matrix products on block-quantized weights (ggml's Q4_0, Q4_1, Q8_0 layouts) for the LLM engine.
//
// Activations are quantized to int8 per 32-element block (BlockQ8A) once per matrix product, and
// the weight rows are streamed once for all the activation rows of a call: decoding reads every
// weight once per step, so one call serves every sequence in the step.
//
// Batch invariance: y[m][n] is computed by the same instructions in the same order whatever the
// number of rows m in the call, wherever row m sits in the call, and however the work is split
// over threads. A sequence's tokens therefore do not depend on which other sequences share its
// step. Every variant below keeps this; the tests check it bit for bit.
#pragma once

#include <cstdint>

namespace coproc::kernels::cpu {

// Weight layouts, with ggml's block formats (f16 scale d, f16 min m, nibbles low-then-high):
//   kQ4_0: 18-byte blocks {d, qs[16]}      w = d * (nibble - 8)
//   kQ4_1: 20-byte blocks {d, m, qs[16]}   w = d * nibble + m
//   kQ8_0: 34-byte blocks {d, q[32]}       w = d * q
enum class QuantWeight { kQ4_0, kQ4_1, kQ8_0 };

// One 32-element block of quantized activations: x ~= d * q, with s = d * sum(q) kept for the
// Q4_1 min term. q is rounded to nearest from x / d, d = max|x| / 127.
struct BlockQ8A {
  float d;
  float s;
  int8_t q[32];
};
static_assert(sizeof(BlockQ8A) == 40);

// The instruction-set variants, best last. best_quant_isa() picks the best the CPU has (checked
// at run time); the others stay callable so the tests hold every variant against the reference.
enum class QuantIsa { kPortable, kAvx2, kAvxVnni, kAvx512Vnni };
QuantIsa best_quant_isa();
bool quant_isa_available(QuantIsa isa);
const char* quant_isa_name(QuantIsa isa);

// Quantizes k floats (k a multiple of 32) into k / 32 blocks: d = max|x| / 127 (in float), then
// q = x * (1 / d) rounded to nearest, ties to even (0 where d is 0), s = d * sum(q). Every variant
// gives the same blocks, bit for bit, for finite x; non-finite x give q = 0, never a fault.
void quantize_q8a(const float* x, int64_t k, BlockQ8A* out);
// The same with a chosen variant (kAvxVnni runs the AVX2 code); for tests.
void quantize_q8a_with(QuantIsa isa, const float* x, int64_t k, BlockQ8A* out);

// y[i * ldy + j] = sum_k W[j][k] * x[i][k] for rows i < m and weight rows j < n.
// w: n rows of k elements in `type`'s blocks, each row k / 32 blocks, rows back to back.
// x: m rows of k / 32 blocks, back to back, every q in [-127, 127] (as quantize_q8a makes them).
// Splits the n weight rows over the intra-op threads (parallel.h), whole tiles of
// kQuantTileRows rows per thread.
void quant_matmul(QuantWeight type, const void* w, int64_t n, int64_t k, const BlockQ8A* x,
                  int64_t m, float* y, int64_t ldy);
// The same with a chosen variant, single-threaded over weight rows [n_begin, n_end).
void quant_matmul_rows(QuantIsa isa, QuantWeight type, const void* w, int64_t n_begin,
                       int64_t n_end, int64_t k, const BlockQ8A* x, int64_t m, float* y,
                       int64_t ldy);

// Arithmetic, the same in every variant, tile shape and thread split (this is what makes the
// results batch invariant and every variant agree bit for bit): for each output, in float, with
// no fused multiply-add,
//   acc = 0; for each block b in order: acc = acc + (dw[b] * dx[b]) * float(isum[b]);
//                                       (kQ4_1 only) acc = acc + mw[b] * sx[b];
// where isum[b] is the exact integer dot product of the block's weight integers (nibble - 8,
// nibble, or q) with the activation's q.

// Packed weights: the layout the kernels read, made once at load so that a call streams one
// contiguous run of bytes per tile of kQuantTileRows rows. Tile t holds rows [16t, 16t + 16)
// (rows past n are zero); inside it, block b of all 16 rows together: their 16 f16 scales d,
// (kQ4_1) their 16 f16 mins m, then the quants four bytes per row at a time, rows interleaved:
// group g is 16 x 4 bytes, row r's bytes qs[4g, 4g + 4) (kQ4_x: 4 groups; low nibbles are
// elements 4g.., high nibbles 16 + 4g..; kQ8_0: 8 groups). Same bytes per row as the plain layout.
// quant_matmul on the plain layout repacks a tile at a time on the fly, which costs little for
// many activation rows and up to ~2x at one row: prefer the packed form for weights.
inline constexpr int64_t kQuantTileRows = 16;
int64_t quant_packed_bytes(QuantWeight type, int64_t n, int64_t k);
// packed: quant_packed_bytes(type, n, k) bytes (64-byte alignment helps); w as for quant_matmul.
void quant_pack(QuantWeight type, const void* w, int64_t n, int64_t k, void* packed);
// As quant_matmul / quant_matmul_rows, on packed weights; same results bit for bit.
void quant_matmul_packed(QuantWeight type, const void* packed, int64_t n, int64_t k,
                         const BlockQ8A* x, int64_t m, float* y, int64_t ldy);
void quant_matmul_packed_rows(QuantIsa isa, QuantWeight type, const void* packed, int64_t n_begin,
                              int64_t n_end, int64_t k, const BlockQ8A* x, int64_t m, float* y,
                              int64_t ldy);

}  // namespace coproc::kernels::cpu
