#include "llm/stop_strings.h"

#include <algorithm>

namespace coproc::llm {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) continue;
    stops_.push_back(std::move(stops[i]));
    indices_.push_back(static_cast<int32_t>(i));
  }
}

size_t StopMatcher::tail_that_may_start_a_stop() const {
  const std::string_view held = held_;
  size_t longest = 0;
  for (const std::string& stop : stops_) {
    // Proper prefixes only: a whole stop string in held_ would already have stopped.
    for (size_t n = std::min(held.size(), stop.size() - 1); n > longest; --n) {
      if (held.ends_with(std::string_view(stop).substr(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

StopFeed StopMatcher::feed(std::string_view text) {
  StopFeed result;
  if (stopped_) {
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  held_.append(text);

  // held_ had no complete stop before this call, so any match found now ends in `text`; the
  // search still starts at 0 because a match may begin in what was held.
  size_t best_start = std::string::npos;
  size_t best_end = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t start = held_.find(stops_[i]);
    if (start == std::string::npos) continue;
    const size_t end = start + stops_[i].size();
    if (end < best_end || (end == best_end && start < best_start)) {
      best_start = start;
      best_end = end;
      result.stop_index = indices_[i];
    }
  }
  if (best_start != std::string::npos) {
    result.text = held_.substr(0, best_start);
    result.stopped = true;
    stopped_ = true;
    stop_index_ = result.stop_index;
    held_.clear();
    return result;
  }

  const size_t keep = tail_that_may_start_a_stop();
  result.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopMatcher::flush() {
  std::string rest;
  rest.swap(held_);
  return rest;
}

}  // namespace coproc::llm
