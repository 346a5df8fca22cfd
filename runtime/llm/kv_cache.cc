#include "llm/kv_cache.h"

#include <algorithm>

#include <fmt/format.h>

#include "llm/model.h"

namespace coproc::llm {

KvBlockPool::KvBlockPool(int32_t n_blocks) : ref_(static_cast<size_t>(n_blocks), 0) {
  free_.reserve(static_cast<size_t>(n_blocks));
  // Block 0 is handed out first.
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t KvBlockPool::allocate() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  COPROC_CHECK(ref_[static_cast<size_t>(b)] == 0);
  ref_[static_cast<size_t>(b)] = 1;
  return b;
}

void KvBlockPool::retain(int32_t block) {
  COPROC_CHECK(ref_[static_cast<size_t>(block)] > 0);
  ++ref_[static_cast<size_t>(block)];
}

void KvBlockPool::release(int32_t block) {
  int32_t& r = ref_[static_cast<size_t>(block)];
  COPROC_CHECK(r > 0);
  if (--r == 0) free_.push_back(block);
}

KvCache::KvCache(const Hparams& hp, KvCacheOptions options)
    : n_layer_(hp.n_layer),
      n_head_kv_(hp.n_head_kv),
      head_dim_(hp.head_dim),
      pool_(static_cast<int32_t>((std::max<int64_t>(options.max_tokens, 1) + kBlockTokens - 1) / kBlockTokens)),
      storage_(options.host_storage ? static_cast<size_t>(storage_floats()) : 0) {}

Status KvCache::add_sequence(SeqId seq) {
  if (!seqs_.emplace(seq, Sequence{}).second) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("sequence {} already exists", seq));
  }
  return {};
}

void KvCache::remove_sequence(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  for (int32_t b : it->second.blocks) pool_.release(b);
  seqs_.erase(it);
}

int32_t KvCache::length(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.n_tokens;
}

void KvCache::truncate(SeqId seq, int32_t n_tokens) {
  Sequence& s = seqs_.at(seq);
  COPROC_CHECK(n_tokens >= 0 && n_tokens <= s.n_tokens);
  s.n_tokens = n_tokens;
  const auto keep = static_cast<size_t>(blocks_needed(n_tokens));
  while (s.blocks.size() > keep) {
    pool_.release(s.blocks.back());
    s.blocks.pop_back();
  }
}

Status KvCache::reserve(SeqId seq, int32_t n) {
  Sequence& s = seqs_.at(seq);
  const auto need = static_cast<size_t>(blocks_needed(s.n_tokens + n));
  if (need > s.blocks.size() && need - s.blocks.size() > static_cast<size_t>(pool_.n_free())) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("KV cache full: sequence {} needs {} more blocks, {} of {} free", seq,
                                  need - s.blocks.size(), pool_.n_free(), pool_.n_blocks()));
  }
  while (s.blocks.size() < need) s.blocks.push_back(pool_.allocate());
  return {};
}

void KvCache::set_length(SeqId seq, int32_t n_tokens) {
  Sequence& s = seqs_.at(seq);
  COPROC_CHECK(blocks_needed(n_tokens) <= static_cast<int32_t>(s.blocks.size()));
  s.n_tokens = n_tokens;
}

std::span<const int32_t> KvCache::block_table(SeqId seq) const { return seqs_.at(seq).blocks; }

}  // namespace coproc::llm
