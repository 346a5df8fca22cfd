// A warning that something outside the daemon can cause as often as it likes
// (a refused peer, a client pushing garbage) is logged at most `per_second`
// times a second; the rest are counted, and the count is logged once the
// second is over. Single-threaded: each user owns one.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string_view>

namespace coproc::daemon {

class LogLimiter {
 public:
  // what: names the lines in the count, e.g. "refusals".
  LogLimiter(uint32_t per_second, std::string_view what) : per_second_(per_second), what_(what) {}

  // now_ms: a monotonic clock in milliseconds.
  void warn(uint64_t now_ms, std::string_view line) {
    const uint64_t second = now_ms / 1000;
    if (second != second_) {
      flush(now_ms);
      second_ = second;
      logged_ = 0;
    }
    if (logged_ < per_second_) {
      ++logged_;
      spdlog::warn("{}", line);
    } else {
      ++unlogged_;
    }
  }

  // Logs how many lines were held back, once their second is over; call it
  // now and then (a timer), or the count waits for the next warn().
  void flush(uint64_t now_ms) {
    if (unlogged_ == 0 || now_ms / 1000 == second_) return;
    spdlog::warn("{} more {} not logged (at most {} are logged per second)", unlogged_, what_,
                 per_second_);
    unlogged_ = 0;
  }

 private:
  const uint32_t per_second_;
  const std::string_view what_;
  uint64_t second_ = 0;
  uint32_t logged_ = 0;
  uint64_t unlogged_ = 0;
};

}  // namespace coproc::daemon
