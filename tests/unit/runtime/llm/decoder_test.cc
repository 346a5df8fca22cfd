// The decoder on the reference model: Context::decode's contract (batch.h), and determinism: the
// same tokens give the same logits, bit for bit, whether a sequence runs alone or beside others,
// whatever they are, however its prompt is split into steps and however many threads run it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "coproc/kernels/parallel.h"
#include "llm/context.h"
#include "llm_test_model.h"

namespace coproc::llm {
namespace {

using testing::reference_model;

// Some prompts of different lengths (token ids of SmolLM2's vocabulary).
const std::vector<std::vector<int32_t>> kPrompts = {
    {504, 3575, 282, 4649, 314},                          // "The capital of France is"
    {1, 4093, 198, 28, 216, 33, 34, 35, 36, 37, 38, 39},  // a few digits and newlines
    {27, 1883, 3278, 28, 6333, 18, 11, 335, 30, 2000, 5000, 7000, 9000, 12000, 20000, 30000, 40000,
     49151, 0, 2, 3, 17, 19, 23},
};

int32_t argmax(const float* row, int32_t n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

bool same_bits(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, static_cast<size_t>(n) * 4) == 0; }

// Greedy-decodes `steps` tokens after each prompt, all sequences in one batch per step, with
// prefills split into steps of `chunk` tokens. Returns each sequence's logits rows (prompt's last
// position, then one per step), concatenated.
std::vector<std::vector<float>> run(const std::vector<std::vector<int32_t>>& prompts, int steps, int chunk) {
  auto model = reference_model();
  Context ctx(model, {.kv_tokens = 1024, .max_context = 0, .max_step_tokens = chunk});
  const int32_t n_vocab = model->hparams().n_vocab;
  std::vector<std::vector<float>> out(prompts.size());
  Batch b;
  for (size_t s = 0; s < prompts.size(); ++s) {
    EXPECT_TRUE(ctx.add_sequence(static_cast<SeqId>(s)).ok());
    for (size_t i = 0; i < prompts[s].size(); ++i) {
      b.add(static_cast<SeqId>(s), static_cast<int32_t>(i), prompts[s][i], i + 1 == prompts[s].size());
    }
  }
  std::vector<float> logits;
  for (int step = 0; step <= steps; ++step) {
    const Status st = ctx.decode(b, &logits);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    if (!st.ok()) return out;
    Batch next;
    for (size_t s = 0; s < prompts.size(); ++s) {
      const float* row = logits.data() + s * static_cast<size_t>(n_vocab);
      out[s].insert(out[s].end(), row, row + n_vocab);
      next.add(static_cast<SeqId>(s), ctx.kv().length(static_cast<SeqId>(s)), argmax(row, n_vocab), true);
    }
    b = next;
  }
  return out;
}

TEST(Decoder, shouldGiveASequenceTheSameLogitsAloneAndBatchedWithOthers) {
  const auto alone = run({kPrompts[0]}, 6, 512);
  const auto batched = run({kPrompts[1], kPrompts[0], kPrompts[2]}, 6, 512);
  ASSERT_EQ(alone[0].size(), batched[1].size());
  EXPECT_TRUE(same_bits(alone[0].data(), batched[1].data(), static_cast<int64_t>(alone[0].size())));
  const auto other_neighbours = run({kPrompts[2], kPrompts[2], kPrompts[0]}, 6, 512);
  EXPECT_TRUE(same_bits(alone[0].data(), other_neighbours[2].data(), static_cast<int64_t>(alone[0].size())));
}

TEST(Decoder, shouldGiveTheSameLogitsHoweverThePromptIsSplitIntoSteps) {
  const auto whole = run({kPrompts[2]}, 3, 512);
  const auto pieces = run({kPrompts[2]}, 3, 5);
  EXPECT_TRUE(same_bits(whole[0].data(), pieces[0].data(), static_cast<int64_t>(whole[0].size())));
}

TEST(Decoder, shouldGiveTheSameLogitsWithOneThreadAndWithTwo) {
  kernels::cpu::set_intra_op_threads(1);
  const auto one = run({kPrompts[0], kPrompts[1]}, 4, 512);
  kernels::cpu::set_intra_op_threads(2);
  const auto two = run({kPrompts[0], kPrompts[1]}, 4, 512);
  kernels::cpu::set_intra_op_threads(1);
  for (size_t s = 0; s < one.size(); ++s) {
    EXPECT_TRUE(same_bits(one[s].data(), two[s].data(), static_cast<int64_t>(one[s].size()))) << "sequence " << s;
  }
}

TEST(Decoder, shouldContinueTheCapitalOfFranceWithParis) {
  const auto out = run({kPrompts[0]}, 0, 512);
  EXPECT_EQ(argmax(out[0].data(), reference_model()->hparams().n_vocab), 7042);  // " Paris"
}

class DecodeContract : public ::testing::Test {
 protected:
  DecodeContract() : ctx_(reference_model(), {.kv_tokens = 2 * kBlockTokens, .max_context = 40, .max_step_tokens = 512}) {
    EXPECT_TRUE(ctx_.add_sequence(0).ok());
  }
  Status decode(const Batch& b) { return ctx_.decode(b, &logits_); }
  Context ctx_;
  std::vector<float> logits_;
};

TEST_F(DecodeContract, shouldRefuseATokenOutsideTheVocabulary) {
  Batch b;
  b.add(0, 0, reference_model()->hparams().n_vocab, true);
  const Status st = decode(b);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("outside the vocabulary"), std::string::npos);
  EXPECT_EQ(ctx_.kv().length(0), 0);
}

TEST_F(DecodeContract, shouldRefuseAPositionThatDoesNotContinueTheSequence) {
  Batch b;
  b.add(0, 0, 1, false);
  b.add(0, 2, 1, true);
  const Status st = decode(b);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("continues at position 1, not 2"), std::string::npos);
  EXPECT_EQ(ctx_.kv().length(0), 0);
  EXPECT_EQ(ctx_.kv().pool().n_free(), 2);
}

TEST_F(DecodeContract, shouldRefuseAnUnknownSequenceAndAnEmptyBatch) {
  Batch b;
  EXPECT_FALSE(decode(b).ok());
  b.add(5, 0, 1, true);
  const Status st = decode(b);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("sequence 5 does not exist"), std::string::npos);
}

TEST_F(DecodeContract, shouldRefuseABatchPastTheKvCapacityOrTheContextAndChangeNothing) {
  Batch b;
  for (int i = 0; i < 2 * kBlockTokens; ++i) b.add(0, i, 1, i == 2 * kBlockTokens - 1);
  ASSERT_TRUE(decode(b).ok());
  EXPECT_EQ(ctx_.kv().length(0), 2 * kBlockTokens);
  ASSERT_TRUE(ctx_.add_sequence(1).ok());
  Batch more;
  more.add(1, 0, 1, true);
  Status st = decode(more);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(ctx_.kv().length(1), 0);
  ctx_.remove_sequence(0);
  ASSERT_TRUE(ctx_.add_sequence(0).ok());
  Batch too_long;
  for (int i = 0; i < 41; ++i) too_long.add(0, i, 1, false);
  st = decode(too_long);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("past the context of 40 tokens"), std::string::npos);
}

TEST(Model, shouldRefuseAMissingFileNamingIt) {
  auto m = Model::load("/nonexistent/model.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("/nonexistent/model.gguf"), std::string::npos);
}

TEST(Model, shouldReadTheReferenceModelsHyperparametersFromTheFile) {
  const Hparams& hp = reference_model()->hparams();
  EXPECT_EQ(hp.n_layer, 30);
  EXPECT_EQ(hp.n_embd, 576);
  EXPECT_EQ(hp.n_head, 9);
  EXPECT_EQ(hp.n_head_kv, 3);
  EXPECT_EQ(hp.n_ff, 1536);
  EXPECT_EQ(hp.n_vocab, 49152);
  EXPECT_EQ(hp.rope_freq_base, 100000.0f);
  EXPECT_EQ(hp.rms_eps, 1e-5f);
  EXPECT_TRUE(reference_model()->weights().tied_output);
}

}  // namespace
}  // namespace coproc::llm
