// A line that something outside the daemon can cause as often as it likes (a refused peer, a
// client that reconnects in a loop, a client pushing garbage) is logged at most `per_second`
// times a second, per cause: each cause has its own LogLimiter, so a flood of one kind neither
// hides nor is hidden by another. The rest are counted, and the count is logged once the second
// is over, by the next line of that cause or by flush() (the control loop's heartbeat calls it
// every second), at the cause's level:
//   "N more <what> not logged (at most P are logged per second)"
// So a cause writes at most per_second + 1 lines a second, however often it happens.
//
// Thread-safe: the control loop flushes limiters that the poller thread writes to. The mutex is
// only taken on these (rare, or rate-limited) log paths, never on the request path.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <mutex>
#include <string_view>

namespace coproc::daemon {

class LogLimiter {
 public:
  // what: names the lines in the count, e.g. "refused hellos"; a string literal (kept by view).
  LogLimiter(uint32_t per_second, std::string_view what,
             spdlog::level::level_enum level = spdlog::level::warn)
      : per_second_(per_second), what_(what), level_(level) {}

  // now_ms: a monotonic clock in milliseconds; every caller of one limiter uses the same clock.
  void log(uint64_t now_ms, std::string_view line) {
    std::lock_guard lock(mu_);
    const uint64_t second = now_ms / 1000;
    if (second != second_) {
      flush_locked(now_ms);
      second_ = second;
      logged_ = 0;
    }
    if (logged_ < per_second_) {
      ++logged_;
      spdlog::log(level_, "{}", line);
    } else {
      ++unlogged_;
    }
  }

  // Logs how many lines were held back, once their second is over.
  void flush(uint64_t now_ms) {
    std::lock_guard lock(mu_);
    flush_locked(now_ms);
  }

 private:
  void flush_locked(uint64_t now_ms) {
    if (unlogged_ == 0 || now_ms / 1000 == second_) return;
    spdlog::log(level_, "{} more {} not logged (at most {} are logged per second)", unlogged_,
                what_, per_second_);
    unlogged_ = 0;
  }

  const uint32_t per_second_;
  const std::string_view what_;
  const spdlog::level::level_enum level_;
  std::mutex mu_;
  uint64_t second_ = 0;
  uint32_t logged_ = 0;
  uint64_t unlogged_ = 0;
};

}  // namespace coproc::daemon
