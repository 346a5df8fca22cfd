// Generation on top of Context: what one sequence needs between decode steps (its sampler, the
// text it has streamed, its stop conditions), and an in-process loop that runs several requests
// to completion with all live sequences in one batch per step.
//
// The daemon's continuous batcher (next issue) holds a SequenceGenerator per running sequence and
// forms the steps itself; tests, coproc-bench and examples use generate().
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "coproc/base/result.h"
#include "llm/context.h"
#include "llm/detokenizer.h"
#include "llm/finish_reason.h"
#include "llm/sampler.h"
#include "llm/stop_strings.h"

namespace coproc::llm {

class Vocab;

struct GenerateRequest {
  std::vector<int32_t> prompt;       // token ids, at least one
  SamplingParams params;
  std::vector<std::string> stop;     // stop strings; the text ends before the first one found
};

// One sampled token and what it adds to the streamed text. The text is complete UTF-8, minus
// anything held back because it may still become a stop string.
struct StreamedToken {
  int32_t token = 0;
  std::string text;
  TokenChoice choice;                // logprobs, when the request asked for them
};

class SequenceGenerator {
 public:
  SequenceGenerator(const Vocab& vocab, const GenerateRequest& request, int32_t max_context);

  // Picks the next token from this sequence's logits row and advances the text. After a
  // finishing token, finished() is true and the token is not to be fed back.
  StreamedToken next(std::span<const float> logits);
  bool finished() const { return finished_; }
  FinishReason reason() const { return reason_; }
  // Text still held back (an incomplete UTF-8 tail, a possible stop-string prefix) once finished
  // by anything but a stop string.
  std::string flush();
  int32_t generated() const { return generated_; }

 private:
  const Vocab& vocab_;
  Sampler sampler_;
  Utf8Stream utf8_;
  StopMatcher stops_;
  int32_t max_tokens_;
  int32_t room_;  // tokens the context still has for this sequence
  int32_t generated_ = 0;
  bool finished_ = false;
  FinishReason reason_ = FinishReason::kLength;
};

struct Generation {
  std::vector<int32_t> tokens;       // generated, the finishing end-of-generation token included
  std::string text;                  // streamed text, then what flush() released
  std::vector<TokenChoice> choices;  // one per token
  FinishReason finish = FinishReason::kLength;
};

// Runs the requests to completion in `ctx`: the first step prefills every prompt, each later
// step decodes one token of every live sequence, all in one batch. Sequence ids are taken from
// first_seq upwards and removed at the end. on_token (optional) sees each request's tokens as they
// are streamed.
Result<std::vector<Generation>> generate(
    Context& ctx, std::span<const GenerateRequest> requests, SeqId first_seq = 0,
    const std::function<void(size_t request, const StreamedToken&)>& on_token = {});

}  // namespace coproc::llm
