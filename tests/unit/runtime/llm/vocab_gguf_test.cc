// Vocab::from_gguf on small GGUF files written here: what it reads, and what it refuses (naming
// the key and the value).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gguf_writer.h"
#include "llm/gguf.h"
#include "llm/unicode.h"
#include "llm/vocab.h"

namespace coproc::llm {
namespace {

using llm::testing::GgufWriter;

// The byte-level spelling of `bytes`.
std::string spell(const std::string& bytes) {
  std::string out;
  for (char c : bytes) append_utf8(byte_to_codepoint(static_cast<uint8_t>(c)), out);
  return out;
}

// A vocabulary of <|endoftext|>, <|im_end|>, the 256 bytes, then merges "a b" and " ab".
struct TinyVocab {
  std::string model = "gpt2";
  std::string pre = "smollm";
  int extra_types = 0;
  uint32_t eos = 1;
  bool duplicate = false;

  std::vector<uint8_t> gguf() const {
    std::vector<std::string> tokens = {"<|endoftext|>", "<|im_end|>"};
    for (int b = 0; b < 256; ++b) tokens.push_back(spell(std::string(1, static_cast<char>(b))));
    tokens.push_back(spell("ab"));
    tokens.push_back(spell(" ab"));
    if (duplicate) tokens.push_back(spell("ab"));
    std::vector<int32_t> types(tokens.size() + extra_types, 1);
    types[0] = types[1] = 3;
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", model);
    w.add_string("tokenizer.ggml.pre", pre);
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_string_array("tokenizer.ggml.merges",
              {spell("a") + " " + spell("b"), spell(" ") + " " + spell("ab")});
    w.add_u32("tokenizer.ggml.eos_token_id", eos);
    w.add_bool("tokenizer.ggml.add_bos_token", false);
    return w.bytes();
  }
};

Result<std::unique_ptr<Vocab>> load(const std::vector<uint8_t>& bytes,
                                    std::unique_ptr<GgufFile>& keep) {
  auto file = GgufFile::parse(bytes);
  EXPECT_TRUE(file.ok()) << (file.ok() ? "" : file.error().message);
  if (!file.ok()) return file.error();
  keep = std::move(*file);
  return Vocab::from_gguf(*keep);
}

void expect_refused(const TinyVocab& tiny, const std::string& named) {
  const std::vector<uint8_t> bytes = tiny.gguf();
  std::unique_ptr<GgufFile> keep;
  auto v = load(bytes, keep);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(v.error().message.find(named), std::string::npos) << v.error().message;
}

TEST(VocabFromGguf, shouldMergeByRankOnASmallVocabulary) {
  const std::vector<uint8_t> bytes = TinyVocab{}.gguf();
  std::unique_ptr<GgufFile> keep;
  auto v = load(bytes, keep);
  ASSERT_TRUE(v.ok()) << v.error().message;
  const int32_t ab = 258, space_ab = 259, c = 2 + 'c';
  EXPECT_EQ((*v)->tokenize("ab ab c", false, false),
            (std::vector<int32_t>{ab, space_ab, 2 + ' ', c}));
  EXPECT_EQ((*v)->eog_ids().size(), 2u);  // EOS <|im_end|> and <|endoftext|> by its text
}

TEST(VocabFromGguf, shouldRefuseAModelOtherThanGpt2) {
  expect_refused({.model = "llama"}, "tokenizer.ggml.model = 'llama'");
}

TEST(VocabFromGguf, shouldRefuseAnUnsupportedPreTokenizer) {
  expect_refused({.pre = "qwen2"}, "tokenizer.ggml.pre = 'qwen2'");
}

TEST(VocabFromGguf, shouldRefuseATokenTypeCountThatDoesNotMatch) {
  expect_refused({.extra_types = 3}, "tokenizer.ggml.token_type");
}

TEST(VocabFromGguf, shouldRefuseASpecialTokenIdOutsideTheVocabulary) {
  expect_refused({.eos = 100000}, "tokenizer.ggml.eos_token_id = 100000");
}

TEST(VocabFromGguf, shouldRefuseTwoTokensWithTheSameText) {
  expect_refused({.duplicate = true}, "tokenizer.ggml.tokens");
}

}  // namespace
}  // namespace coproc::llm
