// The sampler (runtime/llm/sampler.h) on hand-made logits whose answer is known exactly: each
// step of the chain, its order, greedy ties, seeds, logprobs and validation. Distributions are
// checked by drawing many times with a fixed seed against the exact probabilities (a chi-square
// bound), so the checks are deterministic.
#include "llm/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace coproc::llm {
namespace {

constexpr int kDraws = 20000;
constexpr uint64_t kSeed = 1234;

// Everything off but what a test turns on: temperature 1, no truncation, no penalties.
SamplingParams plain() {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = kSeed;
  return p;
}

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(p > 0 ? static_cast<float>(std::log(p)) : -INFINITY);
  return logits;
}

std::vector<int> histogram(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(sampler.sample(logits))];
  return counts;
}

// softmax(logits / temperature) over `kept` (ids), 0 elsewhere.
std::vector<double> expected(const std::vector<float>& logits, const std::set<int>& kept,
                             double temperature = 1.0) {
  std::vector<double> p(logits.size(), 0.0);
  double sum = 0.0;
  for (int id : kept)
    sum += p[static_cast<size_t>(id)] = std::exp(logits[static_cast<size_t>(id)] / temperature);
  for (double& x : p) x /= sum;
  return p;
}

// Tokens with probability 0 must never be drawn; the others must fit their probability. The
// bound is far above the chi-square 99.99% point for the few degrees of freedom used here (~23
// for 5), and far below what a wrong distribution gives over kDraws draws.
void expect_distribution(const std::vector<int>& counts, const std::vector<double>& probs) {
  double chi2 = 0.0;
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " must have been cut";
      continue;
    }
    const double e = n * probs[i];
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  EXPECT_LT(chi2, 30.0);
}

TEST(SamplingParams, shouldDefaultToLlamaCppsValues) {
  const SamplingParams p;
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
  EXPECT_EQ(p.repeat_last_n, 64);
  EXPECT_EQ(p.seed, kRandomSeed);
  EXPECT_EQ(p.max_tokens, -1);
  EXPECT_TRUE(validate(p).ok());
}

TEST(SamplingParams, shouldRejectEachBadFieldNamingItAndItsRange) {
  struct Case {
    void (*set)(SamplingParams&);
    const char* field;
    const char* range;
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.temperature = -0.5f; }, "temperature", ">= 0"},
      {[](SamplingParams& p) { p.temperature = NAN; }, "temperature", ">= 0"},
      {[](SamplingParams& p) { p.top_k = -1; }, "top_k", ">= 0"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p", "(0, 1]"},
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p", "(0, 1]"},
      {[](SamplingParams& p) { p.min_p = -0.1f; }, "min_p", "[0, 1]"},
      {[](SamplingParams& p) { p.min_p = NAN; }, "min_p", "[0, 1]"},
      {[](SamplingParams& p) { p.repeat_penalty = 0.0f; }, "repeat_penalty", "> 0"},
      {[](SamplingParams& p) { p.repeat_penalty = INFINITY; }, "repeat_penalty", "> 0"},
      {[](SamplingParams& p) { p.repeat_last_n = -2; }, "repeat_last_n", ">= -1"},
      {[](SamplingParams& p) { p.frequency_penalty = INFINITY; }, "frequency_penalty", "finite"},
      {[](SamplingParams& p) { p.presence_penalty = NAN; }, "presence_penalty", "finite"},
      {[](SamplingParams& p) { p.max_tokens = -2; }, "max_tokens", ">= -1"},
      {[](SamplingParams& p) { p.n_logprobs = 21; }, "n_logprobs", "[0, 20]"},
      {[](SamplingParams& p) { p.n_logprobs = -1; }, "n_logprobs", "[0, 20]"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.set(p);
    const Status status = validate(p);
    ASSERT_FALSE(status.ok()) << c.field;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(status.error().message.find(c.field), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find(c.range), std::string::npos) << status.error().message;
  }
}

TEST(SamplingParams, shouldAcceptTheEdgesOfEachRange) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repeat_last_n = -1;
  p.max_tokens = 0;
  p.n_logprobs = kMaxLogprobs;
  p.frequency_penalty = -2.0f;
  p.presence_penalty = -2.0f;
  EXPECT_TRUE(validate(p).ok());
}

TEST(Sampler, shouldPickTheHighestLogitWhenGreedy) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  Sampler sampler(p, 5);
  EXPECT_EQ(sampler.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.9f, 0.0f}), 1);
}

TEST(Sampler, shouldBreakGreedyTiesTowardsTheLowerId) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  Sampler sampler(p, 5);
  EXPECT_EQ(sampler.sample(std::vector<float>{0.0f, 2.0f, 1.0f, 2.0f, 2.0f}), 1);
}

TEST(Sampler, shouldBeGreedyWithTopKOneAtAnyTemperatureAndSeed) {
  const std::vector<float> logits{0.5f, 1.0f, 0.9f, 1.0f, -3.0f};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SamplingParams p = plain();
    p.top_k = 1;
    p.temperature = 5.0f;
    p.seed = seed;
    Sampler sampler(p, 5);
    ASSERT_EQ(sampler.sample(logits), 1) << "seed " << seed;
  }
}

TEST(Sampler, shouldDrawFromTheSoftmaxWhenNothingIsCut) {
  const std::vector<float> logits = logits_of({0.1, 0.2, 0.3, 0.4});
  Sampler sampler(plain(), 4);
  expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {0, 1, 2, 3}));
}

TEST(Sampler, shouldKeepTheTopKAndRenormalise) {
  const std::vector<float> logits = logits_of({0.05, 0.3, 0.1, 0.25, 0.2, 0.1});
  SamplingParams p = plain();
  p.top_k = 3;
  Sampler sampler(p, 6);
  expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {1, 3, 4}));
}

TEST(Sampler, shouldKeepTheLowerIdsWhenTopKCutsThroughATie) {
  const std::vector<float> logits{0.0f, 1.0f, 1.0f, 1.0f, 2.0f};
  SamplingParams p = plain();
  p.top_k = 3;
  Sampler sampler(p, 5);
  expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {1, 2, 4}));
}

TEST(Sampler, shouldKeepTheSmallestNucleusReachingTopP) {
  // Sorted probabilities 0.5, 0.3, 0.15, 0.05: 0.75 needs two tokens, 0.85 three.
  const std::vector<float> logits = logits_of({0.15, 0.5, 0.05, 0.3});
  for (const auto& [top_p, kept] : std::vector<std::pair<float, std::set<int>>>{
           {0.4f, {1}}, {0.75f, {1, 3}}, {0.85f, {0, 1, 3}}}) {
    SamplingParams p = plain();
    p.top_p = top_p;
    Sampler sampler(p, 4);
    SCOPED_TRACE(top_p);
    expect_distribution(histogram(sampler, logits, kDraws), expected(logits, kept));
  }
}

TEST(Sampler, shouldCutATieAtTheTopPBoundaryByLowerId) {
  // 0.4, 0.3, 0.3 with top_p 0.6: the nucleus is 0.4 and one of the 0.3s, the one with the
  // lower id, as llama.cpp keeps the smallest prefix.
  const std::vector<float> logits = logits_of({0.3, 0.4, 0.3});
  SamplingParams p = plain();
  p.top_p = 0.6f;
  Sampler sampler(p, 3);
  expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {0, 1}));
}

TEST(Sampler, shouldApplyTopPToWhatTopKLeft) {
  // After top-k 2 the probabilities are 0.625 and 0.375; top_p 0.6 keeps only the first. Over
  // the full set (0.5 first) it would have kept two.
  const std::vector<float> logits = logits_of({0.5, 0.3, 0.2});
  SamplingParams p = plain();
  p.top_k = 2;
  p.top_p = 0.6f;
  Sampler sampler(p, 3);
  expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {0}));
}

TEST(Sampler, shouldSortBeyondItsFirstGuessWhenTheNucleusIsWide) {
  // 1000 equal tokens and top_p 0.9: 900 must stay, more than the 256 ranked first.
  const std::vector<float> logits(1000, 0.0f);
  SamplingParams p = plain();
  p.top_p = 0.9f;
  Sampler sampler(p, 1000);
  std::set<int> seen;
  for (int i = 0; i < 20000; ++i) seen.insert(sampler.sample(logits));
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 899);
  EXPECT_GT(seen.size(), 890u);
}

TEST(Sampler, shouldRankAWideNucleusByLogitThenIdAcrossSignsAndZeros) {
  // 2000 tokens, interleaved: 300 at logit 1, 300 at +0 or -0 (equal), the rest at -5 or -inf.
  // top_p 0.8 needs the 300 ones and then about 80 of the zeros, the lowest ids among them: more
  // than the first guess of 256, so the whole set is ranked. The reference ranks with std::sort.
  std::vector<float> logits(2000);
  for (int i = 0; i < 2000; ++i) {
    const int kind = (i * 7) % 20;
    float& logit = logits[static_cast<size_t>(i)];
    if (kind < 3) {
      logit = 1.0f;
    } else if (kind < 6) {
      logit = (i % 2 == 0) ? 0.0f : -0.0f;
    } else {
      logit = (i % 3 == 0) ? -INFINITY : -5.0f;
    }
  }
  std::vector<int> ranked(logits.size());
  std::iota(ranked.begin(), ranked.end(), 0);
  std::sort(ranked.begin(), ranked.end(), [&](int a, int b) {
    const float la = logits[static_cast<size_t>(a)];
    const float lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  });
  double total = 0.0;
  for (float l : logits) total += std::exp(static_cast<double>(l) - 1.0);
  std::set<int> nucleus;
  double cumulative = 0.0;
  for (int id : ranked) {
    nucleus.insert(id);
    cumulative += std::exp(static_cast<double>(logits[static_cast<size_t>(id)]) - 1.0);
    if (cumulative >= 0.8 * total) break;
  }
  ASSERT_GT(nucleus.size(), 350u);  // the cut falls among the zeros, past the first guess
  ASSERT_LT(nucleus.size(), 600u);

  SamplingParams p = plain();
  p.top_p = 0.8f;
  Sampler sampler(p, 2000);
  std::set<int> seen;
  for (int i = 0; i < kDraws; ++i) seen.insert(sampler.sample(logits));
  EXPECT_EQ(seen, nucleus);
}

TEST(Sampler, shouldKeepTokensAboveMinPTimesTheHighestProbability) {
  // Highest 0.4: min_p 0.3 keeps p >= 0.12 (three tokens), min_p 0.6 keeps p >= 0.24 (two).
  const std::vector<float> logits = logits_of({0.1, 0.4, 0.05, 0.3, 0.15});
  for (const auto& [min_p, kept] : std::vector<std::pair<float, std::set<int>>>{
           {0.3f, {1, 3, 4}}, {0.6f, {1, 3}}, {1.0f, {1}}}) {
    SamplingParams p = plain();
    p.min_p = min_p;
    Sampler sampler(p, 5);
    SCOPED_TRACE(min_p);
    expect_distribution(histogram(sampler, logits, kDraws), expected(logits, kept));
  }
}

TEST(Sampler, shouldScaleTheDrawByTemperature) {
  const std::vector<float> logits{0.0f, 1.0f, 2.0f};
  for (float t : {0.5f, 1.0f, 2.5f}) {
    SamplingParams p = plain();
    p.temperature = t;
    Sampler sampler(p, 3);
    SCOPED_TRACE(t);
    expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {0, 1, 2}, t));
  }
}

TEST(Sampler, shouldCutWithMinPBeforeTheTemperatureFlattens) {
  // At temperature 1, token 3 is 0.1 of the highest and min_p 0.2 cuts it. At temperature 3 it
  // would be 0.46 of the highest and survive, were the temperature applied first.
  const std::vector<float> logits = logits_of({0.5, 0.3, 0.15, 0.05});
  SamplingParams p = plain();
  p.min_p = 0.2f;
  p.temperature = 3.0f;
  Sampler sampler(p, 4);
  expect_distribution(histogram(sampler, logits, kDraws), expected(logits, {0, 1, 2}, 3.0));
}

// Greedy between token 0 (penalised) and token 1 (not): which wins brackets the penalised logit.
int32_t greedy_after(SamplingParams p, std::vector<float> logits, std::vector<int32_t> history) {
  p.temperature = 0.0f;
  Sampler sampler(p, static_cast<int32_t>(logits.size()));
  sampler.accept_prompt(history);
  return sampler.sample(logits);
}

TEST(SamplerPenalties, shouldDivideAPositiveLogitByTheRepeatPenalty) {
  SamplingParams p = plain();
  p.repeat_penalty = 1.5f;  // 3.0 -> 2.0
  EXPECT_EQ(greedy_after(p, {3.0f, 1.99f}, {0}), 0);
  EXPECT_EQ(greedy_after(p, {3.0f, 2.01f}, {0}), 1);
}

TEST(SamplerPenalties, shouldMultiplyANegativeLogitByTheRepeatPenalty) {
  SamplingParams p = plain();
  p.repeat_penalty = 1.5f;  // -2.0 -> -3.0 (dividing would raise it to -1.33)
  EXPECT_EQ(greedy_after(p, {-2.0f, -3.01f}, {0}), 0);
  EXPECT_EQ(greedy_after(p, {-2.0f, -2.99f}, {0}), 1);
}

TEST(SamplerPenalties, shouldSubtractCountTimesFrequencyPenalty) {
  SamplingParams p = plain();
  p.frequency_penalty = 0.25f;  // three occurrences: 2.0 -> 1.25
  EXPECT_EQ(greedy_after(p, {2.0f, 1.24f}, {0, 0, 0}), 0);
  EXPECT_EQ(greedy_after(p, {2.0f, 1.26f}, {0, 0, 0}), 1);
}

TEST(SamplerPenalties, shouldSubtractPresencePenaltyOnceWhateverTheCount) {
  SamplingParams p = plain();
  p.presence_penalty = 0.5f;  // 2.0 -> 1.5, for one occurrence or three
  for (const std::vector<int32_t>& history : {std::vector<int32_t>{0}, {0, 0, 0}}) {
    EXPECT_EQ(greedy_after(p, {2.0f, 1.49f}, history), 0);
    EXPECT_EQ(greedy_after(p, {2.0f, 1.51f}, history), 1);
  }
}

TEST(SamplerPenalties, shouldApplyRepeatThenFrequencyAndPresence) {
  SamplingParams p = plain();
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 1.0f;  // two occurrences: 6.0 / 2 - 2 * 0.5 - 1 = 1.0
  EXPECT_EQ(greedy_after(p, {6.0f, 0.99f}, {0, 0}), 0);
  EXPECT_EQ(greedy_after(p, {6.0f, 1.01f}, {0, 0}), 1);
}

TEST(SamplerPenalties, shouldLeaveTokensOutsideTheWindowAlone) {
  SamplingParams p = plain();
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = 2;
  // Token 0 left the window of the last two; token 2 did not.
  EXPECT_EQ(greedy_after(p, {3.0f, 2.5f, 0.0f}, {0, 2, 2}), 0);
  EXPECT_EQ(greedy_after(p, {3.0f, 2.5f, 0.0f}, {2, 0, 2}), 1);
}

TEST(SamplerPenalties, shouldCountPromptAndGeneratedTokensAlike) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.frequency_penalty = 1.0f;
  Sampler sampler(p, 2);
  const std::vector<float> logits{2.5f, 0.0f};
  sampler.accept_prompt(std::vector<int32_t>{0});
  EXPECT_EQ(sampler.sample(logits), 0);  // 1.5
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(logits), 0);  // 0.5
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(logits), 1);  // -0.5
}

TEST(SamplerPenalties, shouldBeOffWithAZeroWindowAndCoverEverythingWithMinusOne) {
  SamplingParams p = plain();
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = 0;
  EXPECT_EQ(greedy_after(p, {3.0f, 2.5f}, {0}), 0);
  p.repeat_last_n = -1;
  std::vector<int32_t> long_history(1000, 2);
  long_history.front() = 0;  // 999 tokens later, still penalised
  EXPECT_EQ(greedy_after(p, {3.0f, 2.5f, 0.0f}, long_history), 1);
}

TEST(SamplerPenalties, shouldPenaliseBeforeTopK) {
  // Token 0 falls from first to below token 2, so top-k 2 keeps tokens 1 and 2.
  SamplingParams p = plain();
  p.top_k = 2;
  p.presence_penalty = 3.0f;
  Sampler sampler(p, 3);
  sampler.accept(0);
  const std::vector<float> logits{3.0f, 2.0f, 1.0f};
  const std::vector<float> after{0.0f, 2.0f, 1.0f};
  expect_distribution(histogram(sampler, logits, kDraws), expected(after, {1, 2}));
}

std::vector<int32_t> draws(SamplingParams p, int n) {
  Sampler sampler(p, 8);
  const std::vector<float> logits{0.1f, 0.5f, 0.2f, 0.9f, 0.3f, 0.0f, 0.7f, 0.4f};
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.sample(logits));
  return out;
}

TEST(SamplerSeed, shouldRepeatTheSameDrawsForTheSameSeed) {
  SamplingParams p = plain();
  p.seed = 42;
  EXPECT_EQ(draws(p, 200), draws(p, 200));
}

TEST(SamplerSeed, shouldDrawDifferentlyForDifferentSeeds) {
  SamplingParams a = plain();
  SamplingParams b = plain();
  a.seed = 42;
  b.seed = 43;
  EXPECT_NE(draws(a, 200), draws(b, 200));
}

TEST(SamplerSeed, shouldReportTheSeedItDrewSoTheRunCanBeRepeated) {
  SamplingParams p = plain();
  p.seed = kRandomSeed;
  Sampler sampler(p, 8);
  EXPECT_NE(sampler.seed(), kRandomSeed);
  SamplingParams again = plain();
  again.seed = sampler.seed();
  const std::vector<float> logits{0.1f, 0.5f, 0.2f, 0.9f, 0.3f, 0.0f, 0.7f, 0.4f};
  std::vector<int32_t> first;
  for (int i = 0; i < 50; ++i) first.push_back(sampler.sample(logits));
  EXPECT_EQ(draws(again, 50), first);
}

TEST(SamplerSeed, shouldDrawByTheDocumentedRuleFromMt19937_64) {
  // The rule that makes draws portable: u = (top 53 bits of the next mt19937_64 output) * 2^-53,
  // and the first token, in id order when nothing was ranked, whose running sum of softmax
  // weights exceeds u * sum. Nothing here depends on the standard library's distributions.
  const std::vector<float> logits{0.1f, 0.5f, 0.2f, 0.9f, 0.3f, 0.0f, 0.7f, 0.4f};
  std::mt19937_64 rng(kSeed);
  Sampler sampler(plain(), 8);
  for (int i = 0; i < 500; ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    double sum = 0.0;
    for (float l : logits) sum += std::exp(l - 0.9f);
    double running = 0.0;
    int32_t want = 0;
    for (size_t id = 0; id < logits.size(); ++id) {
      running += std::exp(logits[id] - 0.9f);
      if (running > u * sum) {
        want = static_cast<int32_t>(id);
        break;
      }
    }
    ASSERT_EQ(sampler.sample(logits), want) << "draw " << i;
  }
}

TEST(SamplerLogprobs, shouldReportTheChosenTokenAndTheTopNOfTheRawSoftmax) {
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f};
  SamplingParams p = plain();
  p.n_logprobs = 3;
  Sampler sampler(p, 6);
  TokenChoice choice;
  const int32_t token = sampler.sample(logits, &choice);
  EXPECT_EQ(choice.token, token);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(l);
  EXPECT_NEAR(choice.logprob, logits[static_cast<size_t>(token)] - std::log(sum), 1e-6);
  ASSERT_EQ(choice.top.size(), 3u);
  EXPECT_EQ(choice.top[0].token, 1);  // the tie at 2.0: lower id first
  EXPECT_EQ(choice.top[1].token, 3);
  EXPECT_EQ(choice.top[2].token, 4);
  for (const TokenLogprob& t : choice.top)
    EXPECT_NEAR(t.logprob, logits[static_cast<size_t>(t.token)] - std::log(sum), 1e-6);
}

TEST(SamplerLogprobs, shouldSumToOneOverTheVocabulary) {
  std::vector<float> logits;
  for (int i = 0; i < kMaxLogprobs; ++i) logits.push_back(std::sin(static_cast<float>(i)) * 4.0f);
  SamplingParams p = plain();
  p.n_logprobs = kMaxLogprobs;
  Sampler sampler(p, kMaxLogprobs);
  TokenChoice choice;
  sampler.sample(logits, &choice);
  ASSERT_EQ(choice.top.size(), static_cast<size_t>(kMaxLogprobs));
  double total = 0.0;
  for (size_t i = 0; i < choice.top.size(); ++i) {
    total += std::exp(choice.top[i].logprob);
    if (i > 0) {
      EXPECT_GE(choice.top[i - 1].logprob, choice.top[i].logprob);
    }
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(SamplerLogprobs, shouldIgnorePenaltiesAndTemperature) {
  const std::vector<float> logits{1.0f, 2.0f, 0.0f};
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.presence_penalty = 5.0f;
  p.n_logprobs = 1;
  Sampler sampler(p, 3);
  sampler.accept(1);
  TokenChoice choice;
  EXPECT_EQ(sampler.sample(logits, &choice), 0);  // the penalty moved the choice...
  ASSERT_EQ(choice.top.size(), 1u);
  EXPECT_EQ(choice.top[0].token, 1);  // ...not the reported distribution
  const double log_sum = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.0));
  EXPECT_NEAR(choice.logprob, 1.0 - log_sum, 1e-6);
}

TEST(SamplerLogprobs, shouldReportNoMoreAlternativesThanTheVocabularyHolds) {
  SamplingParams p = plain();
  p.n_logprobs = 5;
  Sampler sampler(p, 2);
  TokenChoice choice;
  sampler.sample(std::vector<float>{0.0f, 1.0f}, &choice);
  EXPECT_EQ(choice.top.size(), 2u);
}

}  // namespace
}  // namespace coproc::llm
