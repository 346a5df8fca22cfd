// The CPU's pieces of the forward pass (device_cpu.cc wraps them as an LlmDevice): embedding lookup, RMSNorm, matrix
// products on quantized or float weights, adjacent-pair RoPE, grouped-query attention over the
// paged KV cache, and SwiGLU.
//
// Every piece computes each batch row with the same arithmetic whatever the other rows are, how
// many there are and how the work is split over threads (batch invariance: a sequence's tokens do
// not depend on its neighbours in a step).
#pragma once

#include <cstdint>
#include <span>
#include <vector>  // matmul's activation blocks

#include "coproc/kernels/quant_matmul.h"
#include "llm/batch.h"
#include "llm/model.h"

namespace coproc::llm {

class KvCache;

// x[i] = row tokens[i] of the embedding table (any supported type), for i < tokens.size().
void embed(const Matrix& table, std::span<const int32_t> tokens, float* x);

// y = x / sqrt(mean(x^2) + eps) * w, for `rows` rows of n.
void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* y);

// y[i][j] = sum_k W[j][k] x[i][k] for i < rows: y is [rows, w.rows] with row stride ldy. Quantized
// weights quantize x to int8 per 32 block first (into `xq`).
void matmul(const Matrix& w, const float* x, int64_t rows, float* y, int64_t ldy,
            std::vector<kernels::cpu::BlockQ8A>& xq);

// Rotates (x[2i], x[2i+1]) of each of n_heads heads by pos * freq_base^(-2i / rope_dim), for
// 2i < rope_dim. GGUF llama files store Q and K rows permuted for exactly this pairing.
void rope(float* x, int32_t n_heads, int32_t head_dim, int32_t rope_dim, int32_t pos,
          float freq_base);

// One layer's attention for every batch entry: entry e's query heads q[e] attend over positions
// 0 ..= entries[e].pos of its sequence, read in place from the KV blocks. out is [rows, n_head *
// head_dim]. Query head h reads KV head h / (n_head / n_head_kv).
void attention(const Hparams& hp, int32_t layer, std::span<const BatchEntry> entries,
               const float* q, const KvCache& kv, float* out);

// gate[i] = silu(gate[i]) * up[i].
void swiglu(float* gate, const float* up, int64_t n);

// x[i] += y[i].
void add_in_place(float* x, const float* y, int64_t n);

}  // namespace coproc::llm
