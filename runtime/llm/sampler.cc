#include "llm/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <string>
#include <utility>

namespace coproc::llm {

namespace {

using Candidate = Sampler::Candidate;

// The candidate set between steps. `sorted`: items are in rank order (logit descending, lower id
// first on ties); otherwise they are in id order. Either order is a function of the logits alone,
// which keeps the sums below, and so the draw, reproducible. `scratch` is working space.
struct Candidates {
  std::vector<Candidate>& items;
  std::vector<Candidate>& scratch;
  bool sorted;
};

// Rank order: a strict total order, so any correct sort gives the one result.
bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Top-p ranks this many first, and everything only when they do not reach top_p (as llama.cpp
// does): without top-k the nucleus of a real model's distribution is usually small.
constexpr size_t kTopPFirstGuess = 256;

Error invalid(const char* field, const std::string& value, const char* allowed) {
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("sampling: {} is {}; it must be {}", field, value, allowed));
}

// The `n` best of `count` candidates at(0) .. at(count - 1), whose ids increase with the index,
// into *out in rank order (n <= count). One pass keeping a heap of the n best so far with the
// worst of them on top; a later candidate equal to the worst has a higher id and never displaces
// it, so ties keep the lower id.
template <class At>
void select_top(size_t count, At at, size_t n, std::vector<Candidate>* out) {
  out->clear();
  if (n == 0) return;
  for (size_t i = 0; i < n; ++i) out->push_back(at(i));
  std::make_heap(out->begin(), out->end(), ranks_before);
  for (size_t i = n; i < count; ++i) {
    const Candidate x = at(i);
    if (x.logit > out->front().logit) {
      std::pop_heap(out->begin(), out->end(), ranks_before);
      out->back() = x;
      std::push_heap(out->begin(), out->end(), ranks_before);
    }
  }
  std::sort_heap(out->begin(), out->end(), ranks_before);
}

// A 32-bit key whose descending unsigned order is the logit's order (+0 and -0 equal).
uint32_t descending_key(float logit) {
  const auto bits = std::bit_cast<uint32_t>(logit == 0.0f ? 0.0f : logit);
  const uint32_t ascending = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
  return ~ascending;
}

// Sorts candidates that are in id order into rank order: a stable LSD radix sort on the logit's
// key, a byte per pass, so equal logits keep their id order. A few linear passes where a
// comparison sort of a 49152-token vocabulary costs milliseconds.
void rank_all(std::vector<Candidate>* items, std::vector<Candidate>* scratch) {
  constexpr int kBuckets = 256;
  scratch->resize(items->size());
  for (int shift = 0; shift < 32; shift += 8) {
    std::array<size_t, kBuckets> start{};
    for (const Candidate& x : *items) ++start[(descending_key(x.logit) >> shift) & 0xFF];
    if (std::find(start.begin(), start.end(), items->size()) != start.end()) continue;
    size_t offset = 0;
    for (size_t& s : start) offset += std::exchange(s, offset);
    for (const Candidate& x : *items)
      (*scratch)[start[(descending_key(x.logit) >> shift) & 0xFF]++] = x;
    items->swap(*scratch);
  }
}

float max_logit(const Candidates& c) {
  if (c.sorted) return c.items.front().logit;
  float max = -INFINITY;
  for (const Candidate& x : c.items) max = std::max(max, x.logit);
  return max;
}

// How many of `ranked` (in rank order) it takes for their weights exp(logit - max) to reach
// `target`; 0 when all of them do not.
size_t nucleus_size(std::span<const Candidate> ranked, float max, double target) {
  double cumulative = 0.0;
  for (size_t i = 0; i < ranked.size(); ++i) {
    cumulative += std::exp(ranked[i].logit - max);
    if (cumulative >= target) return i + 1;
  }
  return 0;
}

// --- The chain's steps, in order (sampler.h). ---

// Step 2. Keeps the top_k highest logits of `scores`, in rank order; with top_k off, all of them in
// id order.
void top_k(std::span<const float> scores, int32_t k, Candidates* c) {
  auto at = [scores](size_t i) { return Candidate{static_cast<int32_t>(i), scores[i]}; };
  if (k > 0 && static_cast<size_t>(k) < scores.size()) {
    select_top(scores.size(), at, static_cast<size_t>(k), &c->items);
    c->sorted = true;
    return;
  }
  c->items.resize(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) c->items[i] = at(i);
  c->sorted = false;
}

// Step 3. The smallest rank-order prefix whose probabilities (softmax at temperature 1 over the
// current set) sum to >= p; at least one token stays.
void top_p(float p, Candidates* c) {
  auto& items = c->items;
  if (p >= 1.0f || items.size() <= 1) return;
  const float max = max_logit(*c);
  double sum = 0.0;
  for (const Candidate& x : items) sum += std::exp(x.logit - max);
  const double target = static_cast<double>(p) * sum;

  if (!c->sorted) {
    const size_t guess = std::min(kTopPFirstGuess, items.size());
    select_top(
        items.size(), [&items](size_t i) { return items[i]; }, guess, &c->scratch);
    if (const size_t n = nucleus_size(c->scratch, max, target); n > 0) {
      items.assign(c->scratch.begin(), c->scratch.begin() + static_cast<ptrdiff_t>(n));
      c->sorted = true;
      return;
    }
    rank_all(&items, &c->scratch);
    c->sorted = true;
  }
  // 0 only when rounding keeps the last partial sum a hair under target: everything stays.
  if (const size_t n = nucleus_size(items, max, target); n > 0) items.resize(n);
}

// Step 4. Keeps tokens whose probability is >= p times the highest, i.e. whose logit is >= the
// highest + log(p); the highest always stays. Keeps the set's order.
void min_p(float p, Candidates* c) {
  if (p <= 0.0f || c->items.empty()) return;
  const float threshold = max_logit(*c) + std::log(p);
  std::erase_if(c->items, [threshold](const Candidate& x) { return x.logit < threshold; });
}

// Step 5.
void temperature(float t, Candidates* c) {
  for (Candidate& x : c->items) x.logit /= t;
}

// Step 6. Softmax over the set in its order, and the first token whose running sum passes
// u * sum, u uniform in [0, 1) from the generator's top 53 bits.
int32_t draw(const Candidates& c, std::mt19937_64& rng) {
  const float max = max_logit(c);
  COPROC_CHECK(std::isfinite(max));
  double sum = 0.0;
  for (const Candidate& x : c.items) sum += std::exp(x.logit - max);
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  const double target = u * sum;
  double cumulative = 0.0;
  int32_t last_possible = c.items.front().id;
  for (const Candidate& x : c.items) {
    const float weight = std::exp(x.logit - max);
    if (weight == 0.0f) continue;  // never drawn, even when target is 0
    cumulative += weight;
    last_possible = x.id;
    if (cumulative > target) return x.id;
  }
  return last_possible;  // u * sum rounded up to sum
}

}  // namespace

Status validate(const SamplingParams& p) {
  auto num = [](auto v) { return fmt::format("{}", v); };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    return invalid("temperature", num(p.temperature), "a finite number >= 0 (0: greedy)");
  if (p.top_k < 0) return invalid("top_k", num(p.top_k), ">= 0 (0: off)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return invalid("top_p", num(p.top_p), "in (0, 1] (1: off)");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return invalid("min_p", num(p.min_p), "in [0, 1] (0: off)");
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0f ||
      !std::isfinite(1.0f / p.repeat_penalty))
    return invalid("repeat_penalty", num(p.repeat_penalty), "a finite number > 0 (1: off)");
  if (p.repeat_last_n < -1)
    return invalid("repeat_last_n", num(p.repeat_last_n), ">= -1 (0: off, -1: all tokens)");
  if (!std::isfinite(p.frequency_penalty))
    return invalid("frequency_penalty", num(p.frequency_penalty), "a finite number (0: off)");
  if (!std::isfinite(p.presence_penalty))
    return invalid("presence_penalty", num(p.presence_penalty), "a finite number (0: off)");
  if (p.max_tokens < -1) return invalid("max_tokens", num(p.max_tokens), ">= -1 (-1: no limit)");
  if (p.n_logprobs < 0 || p.n_logprobs > kMaxLogprobs)
    return invalid("n_logprobs", num(p.n_logprobs), "in [0, 20]");
  return {};
}

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab) {
  COPROC_CHECK(validate(params).ok());
  COPROC_CHECK(n_vocab > 0);
  seed_ = params.seed;
  if (seed_ == kRandomSeed) {
    std::random_device device;
    seed_ = (uint64_t{device()} << 32) | device();
  }
  rng_.seed(seed_);
  if (params_.repeat_last_n > 0) window_.reserve(static_cast<size_t>(params_.repeat_last_n));
}

bool Sampler::penalties_active() const {
  return params_.repeat_last_n != 0 &&
         (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
          params_.presence_penalty != 0.0f);
}

void Sampler::accept_prompt(std::span<const int32_t> tokens) {
  for (int32_t token : tokens) accept(token);
}

void Sampler::accept(int32_t token) {
  COPROC_CHECK(token >= 0 && token < n_vocab_);
  if (!penalties_active()) return;
  ++counts_[token];
  if (params_.repeat_last_n < 0) return;  // -1: the window is the whole history
  const auto capacity = static_cast<size_t>(params_.repeat_last_n);
  if (window_.size() < capacity) {
    window_.push_back(token);
    return;
  }
  // Full: the oldest token leaves the window as the new one enters.
  int32_t& slot = window_[window_head_];
  auto oldest = counts_.find(slot);
  if (--oldest->second == 0) counts_.erase(oldest);
  slot = token;
  window_head_ = (window_head_ + 1) % capacity;
}

// Step 1. The raw logits with the penalties applied to the tokens in the window.
std::span<const float> Sampler::penalised(std::span<const float> logits) {
  if (!penalties_active() || counts_.empty()) return logits;
  scores_.assign(logits.begin(), logits.end());
  for (const auto& [token, count] : counts_) {
    float& logit = scores_[static_cast<size_t>(token)];
    // Dividing a negative logit would raise it; multiplying lowers it, as llama.cpp does.
    logit = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
    // Every token in counts_ occurs (count > 0), so presence always applies here.
    logit -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
  return scores_;
}

int32_t Sampler::draw_from_chain(std::span<const float> scores) {
  Candidates c{candidates_, scratch_, false};
  top_k(scores, params_.top_k, &c);
  top_p(params_.top_p, &c);
  min_p(params_.min_p, &c);
  temperature(params_.temperature, &c);
  return draw(c, rng_);
}

int32_t Sampler::sample(std::span<const float> logits, TokenChoice* out) {
  COPROC_CHECK(logits.size() == static_cast<size_t>(n_vocab_));
  const std::span<const float> scores = penalised(logits);
  int32_t token = 0;
  if (params_.temperature <= 0.0f) {
    // Greedy: the first (lowest id) of the highest logits.
    float best = scores[0];
    for (size_t i = 1; i < scores.size(); ++i) {
      if (scores[i] > best) {
        best = scores[i];
        token = static_cast<int32_t>(i);
      }
    }
  } else {
    token = draw_from_chain(scores);
  }
  if (out != nullptr) describe(logits, token, out);
  return token;
}

// log softmax of the raw logits at `token` and at the n_logprobs highest.
void Sampler::describe(std::span<const float> logits, int32_t token, TokenChoice* out) {
  float max = -INFINITY;
  for (float x : logits) max = std::max(max, x);
  double sum = 0.0;
  for (float x : logits) sum += std::exp(x - max);
  const auto log_sum = static_cast<float>(std::log(sum));
  auto logprob = [&](int32_t id) { return (logits[static_cast<size_t>(id)] - max) - log_sum; };

  out->token = token;
  out->logprob = logprob(token);
  out->top.clear();
  const auto raw = [logits](size_t i) { return Candidate{static_cast<int32_t>(i), logits[i]}; };
  select_top(logits.size(), raw, static_cast<size_t>(std::min(params_.n_logprobs, n_vocab_)),
             &top_);
  for (const Candidate& x : top_) out->top.push_back({x.id, logprob(x.id)});
}

}  // namespace coproc::llm
