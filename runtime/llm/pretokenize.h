// Pre-tokenizers: text (as code points) is cut into words before BPE runs on each word alone.
// Each is llama.cpp's, so that the same text gives the same words (llama-vocab.cpp, unicode.cpp):
//
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm  \p{N} first (every digit a word of its own), then the gpt2 expression on each piece
//           between digits
//   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//           | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// The matchers are written by hand, as llama.cpp's are, and follow llama.cpp where it differs
// from a regex engine: each piece of the smollm digit split is matched on its own, so "(?!\S)"
// looks no further than the piece's end; code points that are unassigned count as
// [^\s\p{L}\p{N}]; "(?i:...)" folds ASCII only (no other code point lowercases to s, t, r, e, v,
// m, l or d).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace coproc::llm {

enum class PreTokenizer { kGpt2, kSmollm, kLlama3 };

// The pre-tokenizer that llama.cpp runs for tokenizer.ggml.pre = `name`, among the ones here:
// "gpt-2" -> kGpt2; "smollm" -> kSmollm; "llama3", "llama-v3", "llama-bpe" -> kLlama3. Other names
// (including ones llama.cpp maps to these expressions with other settings) give nullopt.
std::optional<PreTokenizer> pre_tokenizer_from_name(std::string_view name);
const char* pre_tokenizer_name(PreTokenizer pre);

// Cuts `cpts` into words; appends each word's length in code points to `word_lengths` (cleared
// first). The lengths are all > 0 and sum to cpts.size().
void pretokenize(PreTokenizer pre, std::span<const uint32_t> cpts,
                 std::vector<uint32_t>& word_lengths);

}  // namespace coproc::llm
