// Attention of one query row over keys and values stored in fixed-size blocks addressed through a
// block table (the LLM engine's paged KV cache), read in place.
//
// For each query head h of a group sharing one KV head:
//   out[h] = sum_t softmax_t(scale * q[h] . K[t]) V[t]   over positions t in [0, n)
// where position t lives in block table[t / block_tokens] at slot t % block_tokens.
//
// A row's result depends only on its own inputs: the same q, table contents and n give the same
// bits whatever else runs beside it (the LLM engine's batch invariance).
#pragma once

#include <cstdint>

namespace coproc::kernels::cpu {

// A block's keys for one KV head are transposed, [head_dim][block_tokens]; its values are rows,
// [block_tokens][head_dim].
struct PagedKvView {
  const float* keys;      // block 0, KV head 0 of the layer's keys
  const float* values;    // the same for values
  int64_t block_stride;   // floats from a block to the next
  int64_t head_stride;    // floats from a KV head to the next inside a block
  int32_t block_tokens;   // slots per block; the vector kernels need 16
  int32_t head_dim;       // any; multiples of 16 up to 256 take the vector path
};

// The query heads q[0 .. group) (each head_dim floats, contiguous) attend over KV head `kv_head`'s
// positions [0, n), n >= 1; out[0 .. group) likewise. Any group size >= 1 (a model file sets it).
void paged_attention_group(const float* q, int32_t group, const PagedKvView& kv, int32_t kv_head,
                           const int32_t* table, int32_t n, float scale, float* out);

}  // namespace coproc::kernels::cpu
