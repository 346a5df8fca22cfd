#include "llm/generation.h"

#include <algorithm>

#include <fmt/format.h>

#include "llm/vocab.h"

namespace coproc::llm {

SequenceGenerator::SequenceGenerator(const Vocab& vocab, const GenerateRequest& request, int32_t max_context)
    : vocab_(vocab),
      sampler_(request.params, vocab.n_tokens()),
      stops_(request.stop),
      max_tokens_(request.params.max_tokens),
      room_(max_context - static_cast<int32_t>(request.prompt.size())) {
  sampler_.accept_prompt(request.prompt);
}

StreamedToken SequenceGenerator::next(std::span<const float> logits) {
  StreamedToken out;
  out.token = sampler_.sample(logits, &out.choice);
  sampler_.accept(out.token);
  ++generated_;
  if (vocab_.is_eog(out.token)) {
    finished_ = true;
    reason_ = FinishReason::kStop;
    return out;
  }
  const StopFeed r = stops_.feed(utf8_.push(vocab_.token_to_piece(out.token, false)));
  out.text = r.text;
  if (r.stopped) {
    finished_ = true;
    reason_ = FinishReason::kStopString;
  } else if (max_tokens_ > 0 && generated_ >= max_tokens_) {
    finished_ = true;
    reason_ = FinishReason::kLength;
  } else if (generated_ >= room_) {
    // The token just sampled takes the context's last position once fed back.
    finished_ = true;
    reason_ = FinishReason::kContextFull;
  }
  return out;
}

std::string SequenceGenerator::flush() {
  if (reason_ == FinishReason::kStopString) return {};
  std::string tail = stops_.feed(utf8_.flush()).text;
  return tail + stops_.flush();
}

Result<std::vector<Generation>> generate(Context& ctx, std::span<const GenerateRequest> requests, SeqId first_seq,
                                         const std::function<void(size_t, const StreamedToken&)>& on_token) {
  std::vector<Generation> out(requests.size());
  std::vector<SequenceGenerator> gens;
  gens.reserve(requests.size());
  Batch batch;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateRequest& r = requests[i];
    if (r.prompt.empty()) return make_error(ErrorCode::kInvalidArgument, fmt::format("request {}: empty prompt", i));
    if (Status st = validate(r.params); !st) {
      return make_error(st.error().code, fmt::format("request {}: {}", i, st.error().message));
    }
    gens.emplace_back(ctx.model().vocab(), r, ctx.max_context());
  }
  auto cleanup = [&] {
    for (size_t i = 0; i < requests.size(); ++i) ctx.remove_sequence(first_seq + static_cast<SeqId>(i));
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    const SeqId seq = first_seq + static_cast<SeqId>(i);
    if (Status st = ctx.add_sequence(seq); !st) {
      cleanup();
      return st.error();
    }
    const auto& prompt = requests[i].prompt;
    for (size_t p = 0; p < prompt.size(); ++p) batch.add(seq, static_cast<int32_t>(p), prompt[p], p + 1 == prompt.size());
  }
  std::vector<float> logits;
  std::vector<size_t> rows;  // request of each logits row
  for (size_t i = 0; i < requests.size(); ++i) rows.push_back(i);
  const int32_t n_vocab = ctx.model().hparams().n_vocab;
  while (!batch.entries.empty()) {
    if (Status st = ctx.decode(batch, &logits); !st) {
      cleanup();
      return st.error();
    }
    Batch next;
    std::vector<size_t> next_rows;
    for (size_t row = 0; row < rows.size(); ++row) {
      const size_t i = rows[row];
      SequenceGenerator& g = gens[i];
      StreamedToken t = g.next({logits.data() + row * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab)});
      out[i].tokens.push_back(t.token);
      out[i].text += t.text;
      out[i].choices.push_back(t.choice);
      if (on_token) on_token(i, t);
      if (g.finished()) {
        out[i].text += g.flush();
        out[i].finish = g.reason();
        continue;
      }
      const SeqId seq = first_seq + static_cast<SeqId>(i);
      next.add(seq, ctx.kv().length(seq), t.token, true);
      next_rows.push_back(i);
    }
    batch = std::move(next);
    rows = std::move(next_rows);
  }
  cleanup();
  return out;
}

}  // namespace coproc::llm
