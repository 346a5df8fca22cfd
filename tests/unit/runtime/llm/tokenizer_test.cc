// The tokenizer against llama.cpp on the reference model: token ids for every string of
// tests/fixtures/llm/tokenizer_cases.json (tools/llm/make_tokenizer_fixture.py, llama-tokenize),
// with and without special parsing; round trips; special tokens; the end-of-generation set.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "gguf_writer.h"
#include "llm/detokenizer.h"
#include "llm/gguf.h"
#include "llm/vocab.h"

namespace coproc::llm {
namespace {

struct Case {
  std::string kind;
  std::string text;
  std::vector<int32_t> special;  // llama.cpp's ids with special parsing
  std::vector<int32_t> plain;    // and without
};

std::string field(const std::string& line, const std::string& key) {
  const std::string open = "\"" + key + "\": \"";
  const size_t at = line.find(open);
  if (at == std::string::npos) return {};
  const size_t start = at + open.size();
  return line.substr(start, line.find('"', start) - start);
}

std::vector<int32_t> ids(const std::string& line, const std::string& key) {
  const std::string open = "\"" + key + "\": [";
  const size_t at = line.find(open);
  std::vector<int32_t> out;
  if (at == std::string::npos) return out;
  const size_t start = at + open.size();
  std::istringstream in(line.substr(start, line.find(']', start) - start));
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// One case per line, as the fixture script writes it.
std::vector<Case> load_cases() {
  std::ifstream in(COPROC_TOKENIZER_FIXTURE);
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"hex\": ") == std::string::npos) continue;
    cases.push_back(
        {field(line, "kind"), unhex(field(line, "hex")), ids(line, "special"), ids(line, "plain")});
  }
  return cases;
}

const Vocab& vocab() {
  static std::unique_ptr<GgufFile> file;
  static std::unique_ptr<Vocab> v = [] {
    auto opened = GgufFile::open(COPROC_LLM_MODEL);
    EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
    if (!opened.ok()) return std::unique_ptr<Vocab>();
    file = std::move(*opened);
    auto loaded = Vocab::from_gguf(*file);
    EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error().message);
    return loaded.ok() ? std::move(*loaded) : nullptr;
  }();
  if (v == nullptr) {
    ADD_FAILURE() << "cannot load the vocabulary of " << COPROC_LLM_MODEL;
    std::abort();
  }
  return *v;
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    out.push_back(digits[static_cast<uint8_t>(c) >> 4]);
    out.push_back(digits[static_cast<uint8_t>(c) & 15]);
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  Utf8Stream stream;
  std::string out = stream.push(s);  // before flush(): the operands of + are not sequenced
  return out + stream.flush() == s;
}

TEST(VocabParity, shouldMatchLlamaCppIdsOnEveryFixtureString) {
  const std::vector<Case> cases = load_cases();
  ASSERT_GE(cases.size(), 1000u) << "fixture " << COPROC_TOKENIZER_FIXTURE;
  int mismatches = 0;
  for (const Case& c : cases) {
    for (bool parse_special : {true, false}) {
      const auto got = vocab().tokenize(c.text, /*add_special=*/false, parse_special);
      const auto& want = parse_special ? c.special : c.plain;
      if (got != want && ++mismatches <= 10) {
        ADD_FAILURE() << c.kind << " string (hex " << hex(c.text) << "), parse_special "
                      << parse_special << ": " << ::testing::PrintToString(got) << " != llama.cpp "
                      << ::testing::PrintToString(want);
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << 2 * cases.size() << " tokenizations";
}

TEST(VocabParity, shouldRoundTripEveryValidUtf8FixtureString) {
  int checked = 0;
  for (const Case& c : load_cases()) {
    if (!valid_utf8(c.text)) continue;
    ++checked;
    EXPECT_EQ(vocab().detokenize(vocab().tokenize(c.text, false, false), false), c.text)
        << c.kind << " " << hex(c.text);
    EXPECT_EQ(vocab().detokenize(vocab().tokenize(c.text, false, true), true), c.text)
        << c.kind << " " << hex(c.text);
  }
  EXPECT_GT(checked, 900);
}

// The model's vocabulary with another tokenizer.ggml.pre: what the fixture script gave
// llama-tokenize for the same comparison.
std::unique_ptr<GgufFile> with_pre_tokenizer(const std::string& pre) {
  auto model = GgufFile::open(COPROC_LLM_MODEL);
  EXPECT_TRUE(model.ok());
  if (!model.ok()) return nullptr;
  auto strings = [&](const char* key) {
    std::vector<std::string> out;
    for (const GgufValue& v : (*model)->find(key)->array) out.emplace_back(v.str);
    return out;
  };
  std::vector<int32_t> types;
  for (const GgufValue& v : (*model)->find("tokenizer.ggml.token_type")->array) {
    types.push_back(static_cast<int32_t>(v.i));
  }
  llm::testing::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", strings("tokenizer.ggml.tokens"));
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", strings("tokenizer.ggml.merges"));
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  static std::vector<std::vector<uint8_t>> keep_alive;  // parse() views the bytes
  keep_alive.push_back(w.bytes());
  auto parsed = GgufFile::parse(keep_alive.back());
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? std::move(*parsed) : nullptr;
}

TEST(VocabParity, shouldMatchLlamaCppWithTheGpt2AndLlama3PreTokenizers) {
  // All fixture strings joined by <|endoftext|> and tokenized with special parsing, so that each
  // string is still tokenized on its own between two special tokens.
  std::ifstream in(COPROC_TOKENIZER_FIXTURE);
  std::string joined_by, gpt2_line, llama3_line;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("  \"joined_by\"")) joined_by = field(line, "joined_by");
    if (line.starts_with("  \"pre_gpt-2\"")) gpt2_line = line;
    if (line.starts_with("  \"pre_llama-bpe\"")) llama3_line = line;
  }
  ASSERT_FALSE(joined_by.empty()) << "fixture without the joined cases";
  std::string joined;
  const std::vector<Case> cases = load_cases();
  for (size_t i = 0; i < cases.size(); ++i) joined += (i > 0 ? joined_by : "") + cases[i].text;

  for (const auto& [pre, line, expected_pre] :
       {std::tuple{"gpt-2", gpt2_line, PreTokenizer::kGpt2},
        std::tuple{"llama-bpe", llama3_line, PreTokenizer::kLlama3}}) {
    const std::vector<int32_t> want = ids(line, std::string("pre_") + pre);
    ASSERT_GT(want.size(), 10000u) << pre;
    auto file = with_pre_tokenizer(pre);
    ASSERT_NE(file, nullptr);
    auto v = Vocab::from_gguf(*file);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ((*v)->pre_tokenizer(), expected_pre);
    const std::vector<int32_t> got = (*v)->tokenize(joined, false, true);
    size_t first_difference = 0;
    while (first_difference < std::min(got.size(), want.size()) &&
           got[first_difference] == want[first_difference]) {
      ++first_difference;
    }
    EXPECT_TRUE(got == want) << pre << ": " << got.size() << " ids against llama.cpp's "
                             << want.size() << ", first difference at " << first_difference;
  }
}

TEST(Vocab, shouldReadTheModelsTokenizerMetadata) {
  // SmolLM2's GGUF: 49152 tokens, BOS <|im_start|> = 1, EOS <|im_end|> = 2, add_bos_token false.
  EXPECT_EQ(vocab().n_tokens(), 49152);
  EXPECT_EQ(vocab().bos(), 1);
  EXPECT_EQ(vocab().eos(), 2);
  EXPECT_FALSE(vocab().add_bos());
  EXPECT_EQ(vocab().pre_tokenizer(), PreTokenizer::kSmollm);
  EXPECT_NE(vocab().chat_template().find("<|im_start|>"), std::string_view::npos);
}

TEST(Vocab, shouldEndGenerationOnTheSetLlamaCppPrints) {
  // llama.cpp (0c1e570) loading this file prints "EOG token = 0 '<|endoftext|>', 2 '<|im_end|>',
  // 4 '<reponame>'": EOS, the end-of-turn texts, and <reponame> as the FIM repo token.
  const std::vector<int32_t> eog(vocab().eog_ids().begin(), vocab().eog_ids().end());
  EXPECT_EQ(eog, (std::vector<int32_t>{0, 2, 4}));
  EXPECT_TRUE(vocab().is_eog(2));
  EXPECT_FALSE(vocab().is_eog(1));
  EXPECT_FALSE(vocab().is_eog(3));
}

TEST(Vocab, shouldMatchSpecialTokenSpellingsOnlyWhenAsked) {
  const std::string text = "<|im_start|>user\nhi<|im_end|>";
  const auto parsed = vocab().tokenize(text, false, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);
  EXPECT_EQ(parsed.back(), 2);
  for (int32_t id : vocab().tokenize(text, false, false)) {
    EXPECT_GE(id, 17) << "a special token from unparsed text";  // ids 0..16 are control tokens
  }
}

TEST(Vocab, shouldRenderControlTokensOnlyWhenAsked) {
  EXPECT_EQ(vocab().token_to_piece(2, /*render_special=*/true), "<|im_end|>");
  EXPECT_EQ(vocab().token_to_piece(2, /*render_special=*/false), "");
  const std::vector<int32_t> ids = vocab().tokenize("a<|im_end|>b", false, true);
  EXPECT_EQ(vocab().detokenize(ids, false), "ab");
  EXPECT_EQ(vocab().detokenize(ids, true), "a<|im_end|>b");
}

TEST(Vocab, shouldAddNoBosWhenTheModelSaysNot) {
  EXPECT_EQ(vocab().tokenize("hi", true, false), vocab().tokenize("hi", false, false));
}

TEST(Vocab, shouldReadInvalidUtf8AsReplacementCharacters) {
  // Each bad byte reads as U+FFFD, as llama.cpp reads it.
  EXPECT_EQ(vocab().tokenize("a\xff"
                             "b",
                             false, false),
            vocab().tokenize("a\xef\xbf\xbd"
                             "b",
                             false, false));
}

TEST(Utf8StreamOnTokens, shouldReleaseEachCharacterWholeWhenPiecesSplitIt) {
  const std::string text =
      "h\xc3\xa9llo \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x92\xbb \xe4\xb8\xad\xe6\x96\x87";
  const auto ids = vocab().tokenize(text, false, false);
  bool split_somewhere = false;
  Utf8Stream stream;
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = vocab().token_to_piece(id, false);
    const std::string released = stream.push(piece);
    EXPECT_TRUE(valid_utf8(released));
    split_somewhere |= released != piece;
    out += released;
  }
  out += stream.flush();
  EXPECT_EQ(out, text);
  EXPECT_TRUE(split_somewhere) << "no token split a character: the case checks nothing";
}

}  // namespace
}  // namespace coproc::llm
