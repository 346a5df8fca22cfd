// The decoder held against llama.cpp on the reference model, with the fixtures that
// tools/llm/make_reference_fixtures.sh recorded from llama.cpp itself (tests/fixtures/llm).
//
// The two engines quantize activations the same way but not bit for bit, and 30 layers amplify a
// rounding that falls the other way: our logits differ from llama.cpp's by 0.17 on average on its
// top five tokens (max 1.5), about as much as llama.cpp's differ from an exact float32 forward pass
// (0.14), and llama.cpp's own argmax changes at 3.9% of positions between its batched and
// one-token runs (the fixture's batch_size_check). So the rule, for both tests, is: where
// llama.cpp's top two logits are at least kDecisiveGap apart, we must pick its token.
//  - Greedy generation: 64 tokens chosen by argmax equal llama.cpp's token for token up to the
//    first position whose gap is below kDecisiveGap (everything after follows from that pick).
//    All prompts run as one batch per step. The fixture's own 0.1 rule is reported, not asserted.
//  - Teacher forcing: on llama.cpp's token sequences, our argmax is llama.cpp's at >= 99% of the
//    positions whose gap is at least kDecisiveGap, and at >= 95% of all positions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llm/context.h"
#include "llm_test_model.h"

namespace coproc::llm {
namespace {

using nlohmann::json;
using testing::reference_model;

constexpr double kDecisiveGap = 0.5;

json read_fixture(const std::string& name) {
  std::ifstream in(std::string(COPROC_LLM_FIXTURES) + "/" + name);
  EXPECT_TRUE(in.good()) << "cannot read fixture " << name;
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

int32_t argmax(const float* row, int32_t n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

TEST(LlamaCppParity, shouldGenerateLlamaCppsGreedyTokensUpToItsFirstIndecisiveStep) {
  const json fixture = read_fixture("greedy.json");
  ASSERT_TRUE(fixture.is_object());
  const double fixture_gap = fixture["min_decisive_gap"].get<double>();
  const json& cases = fixture["cases"];
  ASSERT_GE(cases.size(), 20u);
  auto model = reference_model();
  const int32_t n_vocab = model->hparams().n_vocab;
  Context ctx(model, {.kv_tokens = 8192, .max_context = 0, .max_step_tokens = 512});

  // Every prompt prefilled in one batch, then one token of every sequence per step.
  Batch batch;
  for (size_t s = 0; s < cases.size(); ++s) {
    ASSERT_TRUE(ctx.add_sequence(static_cast<SeqId>(s)).ok());
    const auto prompt = cases[s]["prompt_ids"].get<std::vector<int32_t>>();
    for (size_t i = 0; i < prompt.size(); ++i) {
      batch.add(static_cast<SeqId>(s), static_cast<int32_t>(i), prompt[i], i + 1 == prompt.size());
    }
  }
  const int n_gen = fixture["n_gen"].get<int>();
  std::vector<std::vector<int32_t>> ours(cases.size());
  std::vector<float> logits;
  for (int step = 0; step < n_gen; ++step) {
    const Status st = ctx.decode(batch, &logits);
    ASSERT_TRUE(st.ok()) << st.error().message;
    batch.clear();
    for (size_t s = 0; s < cases.size(); ++s) {
      const int32_t t = argmax(logits.data() + s * static_cast<size_t>(n_vocab), n_vocab);
      ours[s].push_back(t);
      batch.add(static_cast<SeqId>(s), ctx.kv().length(static_cast<SeqId>(s)), t, true);
    }
  }

  int compared = 0, prompts_within_fixture_rule = 0;
  auto first_below = [](const std::vector<double>& gap, double min_gap) {
    size_t i = 0;
    while (i < gap.size() && gap[i] >= min_gap) ++i;
    return i;
  };
  for (size_t s = 0; s < cases.size(); ++s) {
    const auto theirs = cases[s]["ids"].get<std::vector<int32_t>>();
    const auto gap = cases[s]["gap"].get<std::vector<double>>();
    const size_t until = first_below(gap, kDecisiveGap);
    for (size_t i = 0; i < until; ++i) {
      ASSERT_EQ(ours[s][i], theirs[i]) << "prompt '" << cases[s]["name"].get<std::string>() << "', token " << i
                                       << " (llama.cpp's top-2 gap there: " << gap[i] << ")";
    }
    compared += static_cast<int>(until);
    const size_t fixture_until = first_below(gap, fixture_gap);
    prompts_within_fixture_rule += std::equal(theirs.begin(), theirs.begin() + static_cast<ptrdiff_t>(fixture_until), ours[s].begin());
  }
  std::printf("greedy: %d tokens compared up to llama.cpp's first gap below %.1f; %d of %zu prompts also match up to "
              "the first gap below %.1f\n", compared, kDecisiveGap, prompts_within_fixture_rule, cases.size(),
              fixture_gap);
  EXPECT_GE(compared, 100);
}

TEST(LlamaCppParity, shouldPickLlamaCppsTop1WhereItsTopTwoAreDecisiveOnTeacherForcedText) {
  const json fixture = read_fixture("teacher_forced.json");
  ASSERT_TRUE(fixture.is_object());
  auto model = reference_model();
  const int32_t n_vocab = model->hparams().n_vocab;
  Context ctx(model, {.kv_tokens = 4096, .max_context = 0, .max_step_tokens = 512});
  int64_t positions = 0, agree = 0, n_diff = 0, decisive = 0, decisive_agree = 0;
  double max_diff = 0, sum_diff = 0;
  std::vector<float> logits;
  for (const json& c : fixture["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto theirs = c["argmax"].get<std::vector<int32_t>>();
    ASSERT_EQ(ids.size(), theirs.size());
    ASSERT_TRUE(ctx.add_sequence(0).ok());
    Batch b;
    for (size_t i = 0; i < ids.size(); ++i) b.add(0, static_cast<int32_t>(i), ids[i], true);
    const Status st = ctx.decode(b, &logits);
    ASSERT_TRUE(st.ok()) << st.error().message;
    const auto gap = c["gap"].get<std::vector<double>>();
    int64_t case_agree = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* row = logits.data() + i * static_cast<size_t>(n_vocab);
      const bool same = argmax(row, n_vocab) == theirs[i];
      case_agree += same;
      if (gap[i] >= kDecisiveGap) {
        ++decisive;
        decisive_agree += same;
      }
      // How far our logits are from llama.cpp's, on its five best tokens.
      for (const json& pair : c["top5"][i]) {
        const double diff = std::fabs(row[pair[0].get<int32_t>()] - pair[1].get<double>());
        max_diff = std::max(max_diff, diff);
        sum_diff += diff;
        ++n_diff;
      }
    }
    std::printf("teacher forced '%s': %lld of %zu positions agree\n", c["name"].get<std::string>().c_str(),
                static_cast<long long>(case_agree), ids.size());
    agree += case_agree;
    positions += static_cast<int64_t>(ids.size());
    ctx.remove_sequence(0);
  }
  std::printf("logits on llama.cpp's top 5: mean |ours - llama.cpp| %.4f, max %.4f\n", sum_diff / static_cast<double>(n_diff), max_diff);
  std::printf("all positions: %lld of %lld agree; where llama.cpp's top-2 gap >= %.2f: %lld of %lld\n",
              static_cast<long long>(agree), static_cast<long long>(positions), kDecisiveGap,
              static_cast<long long>(decisive_agree), static_cast<long long>(decisive));
  ASSERT_GE(positions, 2000);
  ASSERT_GE(decisive, 2000);
  EXPECT_GE(static_cast<double>(decisive_agree), 0.99 * static_cast<double>(decisive));
  EXPECT_GE(static_cast<double>(agree), 0.95 * static_cast<double>(positions));
}

}  // namespace
}  // namespace coproc::llm
