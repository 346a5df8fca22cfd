// The KV cache: keys and values of every sequence's past tokens, stored in fixed-size blocks of
// kBlockTokens tokens and addressed through a per-sequence block table, as in vLLM's paged
// attention. A sequence's token t lives in block table[t / kBlockTokens] at slot
// t % kBlockTokens; attention reads the blocks in place.
//
// Blocks come from a pool (KvBlockPool) with reference counts, so that the next issue can share a
// prefix's full blocks between sequences and cache freed ones without changing this layout.
//
// Storage, per layer: [block][k or v][kv head][kBlockTokens * head_dim] floats. A head's values
// in a block are rows, [slot][head_dim]; its keys are transposed, [head_dim][slot], so that the
// attention kernel scores a whole block against a query with one vector FMA per dimension and no
// horizontal sums (offset() below; devices with their own
// copy use the same layout).
//
// Not thread-safe: one Context owns its cache and decodes one batch at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "coproc/base/result.h"
#include "coproc/kernels/paged_attention.h"
#include "llm/batch.h"

namespace coproc::llm {

struct Hparams;

inline constexpr int32_t kBlockTokens = 16;

// The pool's invariants:
//  - every block id in [0, n_blocks) is either on the free list with ref count 0, or referenced by
//    ref_count(id) > 0 block-table slots; never both;
//  - the free list hands out the most recently freed block first (it is warm in cache).
class KvBlockPool {
 public:
  explicit KvBlockPool(int32_t n_blocks);
  int32_t n_blocks() const { return static_cast<int32_t>(ref_.size()); }
  int32_t n_free() const { return static_cast<int32_t>(free_.size()); }
  // A block with ref count 1, or -1 when none is free.
  int32_t allocate();
  void retain(int32_t block);
  // Drops one reference; the block returns to the free list at zero.
  void release(int32_t block);
  int32_t ref_count(int32_t block) const { return ref_[static_cast<size_t>(block)]; }

 private:
  std::vector<int32_t> ref_;
  std::vector<int32_t> free_;  // a stack: back() is handed out next
};

struct KvCacheOptions {
  int64_t max_tokens = 4096;  // tokens over all sequences; rounded up to whole blocks
  // Whether the cache holds the keys and values itself (the CPU device reads them here). A device
  // with its own memory keeps them there, in this layout, and the cache only manages blocks:
  // key() and value() must not be called then.
  bool host_storage = true;
};

class KvCache {
 public:
  KvCache(const Hparams& hp, KvCacheOptions options);

  // A new, empty sequence. kInvalidArgument if `seq` is live.
  Status add_sequence(SeqId seq);
  // Frees the sequence's blocks. A sequence not live is ignored.
  void remove_sequence(SeqId seq);
  bool has_sequence(SeqId seq) const { return seqs_.count(seq) != 0; }
  // Tokens the sequence's KV holds (written by decode).
  int32_t length(SeqId seq) const;
  // Drops the tokens at positions >= n_tokens (n_tokens <= length), freeing whole blocks.
  void truncate(SeqId seq, int32_t n_tokens);

  // Makes room for positions [length, length + n) of `seq`, allocating blocks. All or nothing:
  // on kResourceExhausted nothing changed.
  Status reserve(SeqId seq, int32_t n);
  // Marks positions up to n_tokens as written (decode calls this once the batch is stored).
  void set_length(SeqId seq, int32_t n_tokens);

  std::span<const int32_t> block_table(SeqId seq) const;
  int32_t blocks_needed(int32_t n_tokens) const { return (n_tokens + kBlockTokens - 1) / kBlockTokens; }
  const KvBlockPool& pool() const { return pool_; }
  int64_t bytes() const { return static_cast<int64_t>(storage_.size() * sizeof(float)); }
  // Floats of storage the layout needs, whether or not this cache holds them.
  int64_t storage_floats() const {
    return static_cast<int64_t>(n_layer_) * pool_.n_blocks() * 2 * n_head_kv_ * kBlockTokens * head_dim_;
  }

  // Layer `layer`'s keys and values as the attention kernel reads them, in place.
  kernels::cpu::PagedKvView layer_view(int32_t layer) const {
    return {storage_.data() + offset(layer, 0, 0, 0, 0), storage_.data() + offset(layer, 0, 1, 0, 0),
            static_cast<int64_t>(2) * n_head_kv_ * kBlockTokens * head_dim_,
            static_cast<int64_t>(kBlockTokens) * head_dim_, kBlockTokens, head_dim_};
  }

  // Stores head `head`'s key and value (head_dim floats each) of token slot `slot` of `block` in
  // `layer`: the value as a row, the key as a column of the block's transposed keys.
  void store(int32_t layer, int32_t block, int32_t head, int32_t slot, const float* key, const float* value) {
    float* keys = storage_.data() + offset(layer, block, 0, head, 0);
    for (int32_t d = 0; d < head_dim_; ++d) keys[static_cast<size_t>(d) * kBlockTokens + slot] = key[d];
    std::copy_n(value, head_dim_, storage_.data() + offset(layer, block, 1, head, slot));
  }
  // Head `head`'s key of token slot `slot` of `block` in `layer`, dimension `d` (for tests).
  float key_at(int32_t layer, int32_t block, int32_t head, int32_t slot, int32_t d) const {
    return storage_[offset(layer, block, 0, head, 0) + static_cast<size_t>(d) * kBlockTokens + slot];
  }
  const float* value(int32_t layer, int32_t block, int32_t head, int32_t slot) const {
    return storage_.data() + offset(layer, block, 1, head, slot);
  }

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int32_t n_tokens = 0;  // written tokens
  };
  size_t offset(int32_t layer, int32_t block, int32_t kv, int32_t head, int32_t slot) const {
    return ((((static_cast<size_t>(layer) * pool_.n_blocks() + block) * 2 + kv) * n_head_kv_ + head) *
                kBlockTokens + slot) * head_dim_;
  }

  int32_t n_layer_;
  int32_t n_head_kv_;
  int32_t head_dim_;
  KvBlockPool pool_;
  std::vector<float> storage_;
  std::unordered_map<SeqId, Sequence> seqs_;
};

}  // namespace coproc::llm
