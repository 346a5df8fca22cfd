// The engine's unit of work, like llama.cpp's llama_batch: a list of (sequence, position, token)
// entries. One batch may prefill many tokens of one sequence and decode one token for each of many
// sequences; every sequence has its own KV.
//
// Contract (Context::decode checks it and refuses the whole batch otherwise): a sequence's entries
// appear in increasing position order, the first at the sequence's current length (the tokens its
// KV already holds) and each next one position later. Logits are produced for the entries that
// ask for them, in entry order.
#pragma once

#include <cstdint>
#include <vector>

namespace coproc::llm {

using SeqId = int32_t;

struct BatchEntry {
  SeqId seq = 0;
  int32_t pos = 0;
  int32_t token = 0;
  bool logits = false;
};

struct Batch {
  std::vector<BatchEntry> entries;

  void add(SeqId seq, int32_t pos, int32_t token, bool logits) {
    entries.push_back({seq, pos, token, logits});
  }
  void clear() { entries.clear(); }
  int64_t size() const { return static_cast<int64_t>(entries.size()); }
  int64_t n_logits() const {
    int64_t n = 0;
    for (const BatchEntry& e : entries) n += e.logits;
    return n;
  }
};

}  // namespace coproc::llm
