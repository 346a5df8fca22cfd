// Why a generated sequence ended. The generation loop sets it; the server reports it.
#pragma once

namespace coproc::llm {

enum class FinishReason {
  kStop,         // the model produced an end-of-generation token (any the vocabulary marks)
  kStopString,   // the text reached one of the request's stop strings
  kLength,       // max_tokens tokens were generated
  kContextFull,  // the sequence filled the context window before max_tokens
};

// "stop", "stop_string", "length", "context_full".
constexpr const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kStopString:
      return "stop_string";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context_full";
  }
  return "unknown";
}

}  // namespace coproc::llm
