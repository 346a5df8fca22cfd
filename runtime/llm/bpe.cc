#include "llm/bpe.h"

#include <algorithm>

namespace coproc::llm {
namespace {

// Heap order: the lowest rank first, then the leftmost pair (llama.cpp's llm_bigram_bpe).
struct LaterCandidate {
  bool operator()(const Bpe::Scratch::Candidate& a, const Bpe::Scratch::Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

constexpr uint8_t kFirstOneCharByte = '!';  // '!'..'~' spell themselves in the byte alphabet
constexpr uint8_t kLastOneCharByte = '~';

}  // namespace

Bpe::Bpe(const std::vector<std::string>& token_bytes, const std::vector<bool>& usable,
         const std::vector<std::pair<std::string, std::string>>& merges)
    : n_tokens_(static_cast<int32_t>(token_bytes.size())) {
  for (int32_t id = 0; id < n_tokens_; ++id) {
    if (usable[id]) symbol_of_.emplace(token_bytes[id], id);
  }
  for (int b = 0; b < 256; ++b) byte_symbol_[b] = intern(std::string(1, static_cast<char>(b)));
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    if (left.empty() || right.empty()) continue;
    const int32_t l = intern(left);
    const int32_t r = intern(right);
    const int32_t result = intern(left + right);
    merges_.emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
  }
}

int32_t Bpe::intern(const std::string& bytes) {
  const int32_t next = n_tokens_ + static_cast<int32_t>(extra_symbols_.size());
  auto [it, inserted] = symbol_of_.emplace(bytes, next);
  if (inserted) extra_symbols_.push_back(bytes);
  return it->second;
}

int32_t Bpe::find(std::string_view bytes) const {
  auto it = symbol_of_.find(bytes);
  return it != symbol_of_.end() && it->second < n_tokens_ ? it->second : -1;
}

void Bpe::push_candidate(Scratch& scratch, int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return;
  const Scratch::Symbol& l = scratch.symbols[left];
  const Scratch::Symbol& r = scratch.symbols[right];
  auto it = merges_.find(pair_key(l.id, r.id));
  if (it == merges_.end()) return;
  scratch.heap.push_back({it->second.rank, left, right, it->second.result, l.bytes + r.bytes});
  std::push_heap(scratch.heap.begin(), scratch.heap.end(), LaterCandidate{});
}

void Bpe::encode(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const {
  auto& symbols = scratch.symbols;
  auto& heap = scratch.heap;
  symbols.clear();
  heap.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols.push_back(
        {byte_symbol_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, 1});
  }
  for (int32_t i = 1; i < n; ++i) push_candidate(scratch, i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LaterCandidate{});
    const Scratch::Candidate c = heap.back();
    heap.pop_back();
    Scratch::Symbol& left = symbols[c.left];
    Scratch::Symbol& right = symbols[c.right];
    // A symbol only ever grows by taking in its right neighbour, so an unchanged total size
    // means both sides are still the symbols this candidate ranked.
    if (left.bytes == 0 || right.bytes == 0 || left.bytes + right.bytes != c.bytes) continue;
    left.id = c.result;
    left.bytes += right.bytes;
    right.bytes = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    push_candidate(scratch, left.prev, c.left);
    push_candidate(scratch, c.left, left.next);
  }

  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) {
    const int32_t id = symbols[i].id;
    if (id < n_tokens_) {
      out.push_back(id);
      continue;
    }
    for (char ch : extra_symbols_[id - n_tokens_]) {
      const auto byte = static_cast<uint8_t>(ch);
      if (byte < kFirstOneCharByte || byte > kLastOneCharByte) continue;
      const int32_t token = find(std::string_view(&ch, 1));
      if (token >= 0) out.push_back(token);
    }
  }
}

}  // namespace coproc::llm
