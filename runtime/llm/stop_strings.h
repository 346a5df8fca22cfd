// Stop strings: generated text is fed in as it is decoded, token by token, and comes out minus
// any stop string and everything after it. A stop string may span any number of tokens, so the
// matcher holds back the longest tail of the text that could still grow into one, and releases it
// once it no longer can (or at flush()).
//
// Which stop wins: the one whose match ends first in the text; of those ending at the same byte,
// the one that starts first (the longest). That depends on the text only, not on how it was cut
// into pieces. Matching is on bytes; stop strings are valid UTF-8, so the cut falls on a character
// boundary of valid text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace coproc::llm {

struct StopFeed {
  std::string text;         // safe to emit now
  bool stopped = false;     // a stop string completed: `text` is the last of the output
  int32_t stop_index = -1;  // which one, as an index into the constructor's list
};

class StopMatcher {
 public:
  // Empty strings are ignored (they would stop before the first byte).
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `text` to the output. After a stop, further feeds return no text and the same stop.
  StopFeed feed(std::string_view text);
  // At the end of generation without a stop: the text held back. Empty after a stop.
  std::string flush();

  bool stopped() const { return stopped_; }

 private:
  // Bytes at the end of held_ that are a proper prefix of some stop string.
  size_t tail_that_may_start_a_stop() const;

  std::vector<std::string> stops_;
  std::vector<int32_t> indices_;  // stops_[i] is the constructor's stops[indices_[i]]
  std::string held_;              // text not yet released; holds no complete stop string
  bool stopped_ = false;
  int32_t stop_index_ = -1;
};

}  // namespace coproc::llm
