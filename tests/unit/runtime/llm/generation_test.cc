// Generation on the reference model: prompts through the tokenizer and the chat template, the
// sampler's seeds, stop strings and end-of-generation tokens, and determinism of sampled text
// whether a request runs alone or batched with others.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llm/chat_template.h"
#include "llm/generation.h"
#include "llm/vocab.h"
#include "llm_test_model.h"

namespace coproc::llm {
namespace {

using testing::reference_model;

GenerateRequest request(const std::string& text, float temperature, uint64_t seed, int32_t max_tokens) {
  GenerateRequest r;
  r.prompt = reference_model()->vocab().tokenize(text, true, false);
  r.params.temperature = temperature;
  r.params.seed = seed;
  r.params.max_tokens = max_tokens;
  return r;
}

Context context() { return Context(reference_model(), {.kv_tokens = 4096, .max_context = 0, .max_step_tokens = 512}); }

TEST(Generation, shouldGreedilyContinueTheCapitalOfFranceAsLlamaCppDoes) {
  Context ctx = context();
  const GenerateRequest r = request("The capital of France is", 0.0f, 1, 8);
  auto out = generate(ctx, {&r, 1});
  ASSERT_TRUE(out.ok()) << out.error().message;
  // llama.cpp's greedy tokens for this prompt (tests/fixtures/llm/greedy.json, case "capital").
  EXPECT_EQ((*out)[0].tokens, (std::vector<int32_t>{7042, 30, 198, 198, 504, 1797, 1918, 553}));
  EXPECT_EQ((*out)[0].text, " Paris.\n\nThe United States has");
  EXPECT_EQ((*out)[0].finish, FinishReason::kLength);
}

TEST(Generation, shouldAnswerAChatAndStopAtTheEndOfTurn) {
  const Vocab& vocab = reference_model()->vocab();
  const std::vector<ChatMessage> chat = {{"user", "What is 2 + 2? Answer with one word."}};
  auto text = format_chat(vocab.chat_template(), chat, true);
  ASSERT_TRUE(text.ok()) << text.error().message;
  GenerateRequest r;
  r.prompt = vocab.tokenize(*text, false, true);
  r.params.temperature = 0.0f;
  r.params.max_tokens = 64;
  Context ctx = context();
  auto out = generate(ctx, {&r, 1});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].finish, FinishReason::kStop) << (*out)[0].text;
  EXPECT_TRUE(vocab.is_eog((*out)[0].tokens.back()));
  EXPECT_FALSE((*out)[0].text.empty());
  EXPECT_EQ((*out)[0].text.find("<|im_end|>"), std::string::npos);
}

TEST(Generation, shouldEndTheTextBeforeAStopStringSpanningTokens) {
  Context ctx = context();
  GenerateRequest r = request("The capital of France is", 0.0f, 1, 32);
  r.stop = {"United St"};  // " United" and " States" are separate tokens
  auto out = generate(ctx, {&r, 1});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].finish, FinishReason::kStopString);
  EXPECT_EQ((*out)[0].text, " Paris.\n\nThe ");
}

TEST(Generation, shouldSampleTheSameTextForTheSameSeedAloneOrBatchedAndOtherTextForAnotherSeed) {
  const GenerateRequest a = request("Once upon a time", 0.9f, 1234, 24);
  const GenerateRequest b = request("def fibonacci(n):", 0.7f, 99, 30);
  const GenerateRequest c = request("Once upon a time", 0.9f, 4321, 24);
  Context ctx = context();
  auto alone = generate(ctx, {&a, 1});
  ASSERT_TRUE(alone.ok());
  const std::vector<GenerateRequest> mixed = {b, a, c};
  auto batched = generate(ctx, mixed);
  ASSERT_TRUE(batched.ok());
  EXPECT_EQ((*alone)[0].tokens, (*batched)[1].tokens);
  EXPECT_EQ((*alone)[0].text, (*batched)[1].text);
  EXPECT_NE((*batched)[1].tokens, (*batched)[2].tokens);
  // The sequences were freed: the cache is empty again.
  EXPECT_EQ(ctx.kv().pool().n_free(), ctx.kv().pool().n_blocks());
}

TEST(Generation, shouldStreamTheSameTextItReturns) {
  Context ctx = context();
  const GenerateRequest r = request("Emoji and accents: caf", 0.0f, 1, 20);
  std::string streamed;
  auto out = generate(ctx, {&r, 1}, 0, [&](size_t, const StreamedToken& t) { streamed += t.text; });
  ASSERT_TRUE(out.ok());
  // Every streamed piece is complete UTF-8 (held-back bytes come with a later token or the flush).
  std::string flushed = (*out)[0].text.substr(streamed.size());
  EXPECT_EQ(streamed + flushed, (*out)[0].text);
  EXPECT_EQ(reference_model()->vocab().detokenize((*out)[0].tokens, false).rfind(streamed, 0), 0u);
}

TEST(Generation, shouldRefuseBadSamplingParametersNamingTheRequest) {
  Context ctx = context();
  GenerateRequest r = request("Hello", 0.0f, 1, 4);
  r.params.top_p = 1.5f;
  auto out = generate(ctx, {&r, 1});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("request 0"), std::string::npos);
  EXPECT_NE(out.error().message.find("top_p"), std::string::npos);
}

}  // namespace
}  // namespace coproc::llm
