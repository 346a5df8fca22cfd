// Byte-level BPE by merge rank, on one pre-tokenized word at a time.
//
// A word starts as one symbol per byte. The adjacent pair with the lowest merge rank is merged
// (of equal ranks, the leftmost), and its neighbours' pairs are ranked anew, until no adjacent pair
// has a merge. This is llama.cpp's order (llm_tokenizer_bpe_session), so the result is the same
// even for vocabularies whose merges are not consistent with their token list.
//
// Symbols are integers, so the merge loop touches no strings: a vocabulary text has its token id,
// and a merge result that is not in the vocabulary gets an id past the vocabulary's end. A final
// symbol that is not a token falls back to one token per byte the way llama.cpp does (only the
// bytes '!'..'~', whose byte-level spelling is one character, find one; the others are dropped).
// Nothing is cached between words.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace coproc::llm {

class Bpe {
 public:
  // `token_bytes[id]`: the bytes token `id` stands for (its text decoded from the byte-level
  // alphabet); `usable[id]` is false when the text is not in that alphabet (merges never make
  // such a token). Usable texts are distinct. `merges` in rank order, as pairs of byte strings: a
  // pair seen again keeps its first rank; a pair with an empty side is skipped.
  Bpe(const std::vector<std::string>& token_bytes, const std::vector<bool>& usable,
      const std::vector<std::pair<std::string, std::string>>& merges);

  // Working memory for encode(), reused across words so that a long text does not allocate per
  // word. It grows to the longest word seen and no further.
  struct Scratch {
    struct Symbol {
      int32_t id;
      int32_t prev, next;  // indices into symbols, -1 at the ends
      uint32_t bytes;      // 0 once merged into its left neighbour
    };
    struct Candidate {
      int32_t rank;
      int32_t left, right;  // symbol indices
      int32_t result;       // the merged symbol's id
      uint32_t bytes;       // left + right bytes when ranked: any other size now means stale
    };
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };

  int32_t n_tokens() const { return n_tokens_; }
  // The token whose bytes are exactly `bytes`, or -1.
  int32_t find(std::string_view bytes) const;

  // Appends the tokens of `word` (non-empty bytes) to `out`.
  void encode(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol id
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  int32_t intern(const std::string& bytes);
  void push_candidate(Scratch& scratch, int32_t left, int32_t right) const;

  int32_t n_tokens_ = 0;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> symbol_of_;  // bytes -> id
  std::vector<std::string> extra_symbols_;      // bytes of ids n_tokens_, n_tokens_ + 1...
  std::unordered_map<uint64_t, Merge> merges_;  // (left, right) -> rank, result
  int32_t byte_symbol_[256];                    // symbol of each single byte
};

}  // namespace coproc::llm
