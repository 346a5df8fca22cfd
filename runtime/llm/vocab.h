// The tokenizer of a GGUF model: its vocabulary, special tokens and end-of-generation set, read
// from the tokenizer.* metadata, and text <-> token ids the way llama.cpp does it
// (llama-vocab.cpp), so that the same text gives the same ids.
//
// Supported: tokenizer.ggml.model "gpt2" (byte-level BPE) with the pre-tokenizers of
// pretokenize.h. Anything else is refused by from_gguf() naming the key and its value; so are a
// token_type array whose length differs from the token list's, a special-token id outside the
// vocabulary, and two tokens with the same text.
//
// Tokenizing: special tokens are cut out of the text first, longest text first: control tokens
// only when parse_special is set, user-defined tokens always (as llama.cpp and Hugging Face do).
// The text between them is pre-tokenized and BPE-encoded. Invalid UTF-8 is read as U+FFFD per
// bad byte (unicode.h), so its bytes do not survive a round trip.
//
// Immutable after from_gguf(); every method is const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coproc/base/result.h"
#include "llm/bpe.h"
#include "llm/pretokenize.h"

namespace coproc::llm {

class GgufFile;

class Vocab {
 public:
  static Result<std::unique_ptr<Vocab>> from_gguf(const GgufFile& file);

  int32_t n_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }  // -1 when the model has none
  int32_t eos() const { return eos_; }  // -1 when the model has none
  bool add_bos() const { return add_bos_; }
  PreTokenizer pre_tokenizer() const { return pre_; }

  // End of generation: eos, eot, eom, and the tokens llama.cpp stops on by their text
  // (<|im_end|>, <|endoftext|>, <|eot_id|>, ...; also the fill-in-the-middle pad/repo/separator
  // tokens). Sorted ascending.
  bool is_eog(int32_t id) const;
  std::span<const int32_t> eog_ids() const { return eog_; }

  // add_special: BOS first when add_bos(), EOS last when the model's add_eos_token says so.
  // parse_special: control-token spellings in `text` become those tokens.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes token `id` stands for (0 <= id < n_tokens(), checked). Control and unknown tokens
  // give their text with render_special and nothing without; user-defined tokens always give their
  // text. A piece may end inside a UTF-8 sequence: Utf8Stream (detokenizer.h) reassembles them.
  std::string token_to_piece(int32_t id, bool render_special) const;
  // The pieces of `ids` one after another (no cleanup of spaces: what a stream of pieces gives).
  std::string detokenize(std::span<const int32_t> ids, bool render_special) const;

  // tokenizer.chat_template, or empty.
  std::string_view chat_template() const { return chat_template_; }

 private:
  enum Attr : uint8_t {
    kNormal = 1,
    kUnknown = 2,
    kControl = 4,
    kUserDefined = 8,
    kUnused = 16,
    kByte = 32,
  };
  struct Fragment {
    size_t offset, length;  // of raw text, when token < 0
    int32_t token;
  };

  Vocab() = default;
  void find_special_tokens();
  void split_special(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

  PreTokenizer pre_ = PreTokenizer::kGpt2;
  bool ignore_merges_ = false;       // llama3: a word that is a whole token is that token
  std::vector<std::string> tokens_;  // the vocabulary's texts, as in the file
  std::vector<uint8_t> attrs_;
  std::vector<std::string> pieces_;  // what each token renders as with render_special
  std::unique_ptr<Bpe> bpe_;
  std::vector<int32_t> special_;  // control / user-defined / unknown tokens, longest text first
  std::vector<int32_t> eog_;
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1;
  bool add_bos_ = false, add_eos_ = false;
  std::string chat_template_;
};

}  // namespace coproc::llm
