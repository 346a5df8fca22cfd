// Sampling: choosing the next token from one row of logits, with llama.cpp's chain order and its
// defaults (common_params_sampling in llama.cpp's common/common.h).
//
// The chain, each step a named function in sampler.cc, applied in this order:
//   1. penalties    on tokens seen in the last repeat_last_n tokens of prompt + generated text:
//                   repetition (a positive logit is divided by repeat_penalty, a negative one
//                   multiplied), then frequency and presence
//                   (logit -= count * frequency_penalty + (count > 0) * presence_penalty)
//   2. top-k        keep the top_k highest logits (0: all)
//   3. top-p        keep the smallest set of most likely tokens whose probabilities, taken at
//                   temperature 1 over what top-k left, sum to >= top_p (1: off)
//   4. min-p        keep the tokens whose probability is >= min_p * the highest one (0: off)
//   5. temperature  divide the logits by temperature
//   6. draw         one token from the softmax of what is left, with the sampler's own generator
// temperature <= 0 is greedy: the penalties, then the highest logit. llama.cpp runs top-k, top-p
// and min-p there too, but none of them can drop the highest logit, so skipping them changes
// nothing.
//
// Ties are broken towards the lower token id everywhere (greedy, the cut of top-k and top-p), so
// the set a step keeps and the order it is drawn in are defined by the logits alone.
//
// Reproducible: the same seed, history and logits give the same token on every machine and
// compiler. The generator is std::mt19937_64, whose output the C++ standard specifies; the draw
// turns its 53 top bits into a double itself (no std:: distribution, whose results are
// implementation-defined); sums run in a fixed order over a defined candidate order. What
// remains is the C library's expf: builds on the same libm agree bit for bit, and a last-bit
// difference elsewhere moves a draw only when the uniform lands within about 1e-7 (relative) of
// a boundary between two tokens.
//
// Logprobs (TokenChoice) are natural logs of the softmax of the raw logits: before the
// penalties, the truncations and the temperature. That is what llama-server reports by default
// (post_sampling_probs = false) and what OpenAI-style logprobs mean: the model's distribution,
// not the sampler's.
//
// Not thread-safe; one Sampler per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "coproc/base/result.h"

namespace coproc::llm {

// params.seed's value for "draw a seed from std::random_device" (llama.cpp's LLAMA_DEFAULT_SEED
// is the same idea with 32 bits). Sampler::seed() tells which one was drawn.
inline constexpr uint64_t kRandomSeed = ~uint64_t{0};
// The most alternatives a TokenChoice reports, as in OpenAI's top_logprobs.
inline constexpr int32_t kMaxLogprobs = 20;

// Defaults are llama.cpp's (common_params_sampling, common_params::n_predict).
struct SamplingParams {
  float temperature = 0.8f;        // <= 0: greedy
  int32_t top_k = 40;              // 0: off
  float top_p = 0.95f;             // 1: off
  float min_p = 0.05f;             // 0: off
  float repeat_penalty = 1.0f;     // 1: off
  int32_t repeat_last_n = 64;      // tokens of history the penalties look at; 0: off, -1: all
  float frequency_penalty = 0.0f;  // 0: off
  float presence_penalty = 0.0f;   // 0: off
  uint64_t seed = kRandomSeed;
  int32_t max_tokens = -1;  // -1: until an end-of-generation token or a full context
  int32_t n_logprobs = 0;   // alternatives reported per token, 0 .. kMaxLogprobs
};

// kInvalidArgument naming the first bad field, its value and the allowed range.
Status validate(const SamplingParams& params);

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// What sample() chose, with logprobs from the raw logits (see the top of this file).
struct TokenChoice {
  int32_t token = -1;
  float logprob = 0.0f;
  // The n_logprobs most likely tokens, most likely first (lower id first on ties); the chosen
  // token may or may not be among them.
  std::vector<TokenLogprob> top;
};

class Sampler {
 public:
  // `params` must pass validate(); n_vocab > 0.
  Sampler(const SamplingParams& params, int32_t n_vocab);

  const SamplingParams& params() const { return params_; }
  // The seed the generator started from: params.seed, or the one drawn for kRandomSeed.
  uint64_t seed() const { return seed_; }

  // History for the penalties. As in llama-server, the prompt's tokens count: the window of the
  // last repeat_last_n tokens runs over prompt + generated. sample() records nothing itself; the
  // caller accepts the token it keeps. Tokens must be in [0, n_vocab).
  void accept_prompt(std::span<const int32_t> tokens);
  void accept(int32_t token);

  // The next token for `logits` (n_vocab values, finite or -inf, at least one finite). Fills
  // *out when given.
  int32_t sample(std::span<const float> logits, TokenChoice* out = nullptr);

  // One (token id, logit) of the candidate set the chain narrows down.
  struct Candidate {
    int32_t id;
    float logit;
  };

 private:
  bool penalties_active() const;
  std::span<const float> penalised(std::span<const float> logits);
  int32_t draw_from_chain(std::span<const float> scores);
  void describe(std::span<const float> logits, int32_t token, TokenChoice* out);

  SamplingParams params_;
  int32_t n_vocab_;
  uint64_t seed_;
  std::mt19937_64 rng_;

  // Penalty history: the window's tokens in order (only when repeat_last_n > 0) and how often
  // each token occurs in it.
  std::vector<int32_t> window_;
  size_t window_head_ = 0;  // next slot of window_ to overwrite once it is full
  std::unordered_map<int32_t, int32_t> counts_;

  // Scratch reused across calls so that sample() does not allocate in the steady state.
  std::vector<float> scores_;
  std::vector<Candidate> candidates_;
  std::vector<Candidate> scratch_;
  std::vector<Candidate> top_;
};

}  // namespace coproc::llm
