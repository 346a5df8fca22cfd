// Durations on the hot path. A vDSO clock_gettime costs about 25 ns on a VM,
// rdtsc about 10 ns, and the daemon times every request twice (queue and
// execution time), so durations are taken in TSC ticks and converted with a
// scale calibrated against CLOCK_MONOTONIC at start. Only durations: absolute
// times (deadlines) still come from CLOCK_MONOTONIC, and only when a request
// has a deadline. Where the TSC is not invariant (constant_tsc and
// nonstop_tsc in /proc/cpuinfo) or not x86, ticks are CLOCK_MONOTONIC ns.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "coproc/ring/wait.h"

namespace coproc::daemon {

class CycleClock {
 public:
  // Measures the tick rate; call once before any thread uses the clock.
  static void calibrate();

  static uint64_t now() {
#if defined(__x86_64__)
    if (use_tsc_) return __rdtsc();
#endif
    return static_cast<uint64_t>(ring::monotonic_ns());
  }

  static uint64_t to_ns(uint64_t ticks) {
    return static_cast<uint64_t>(static_cast<double>(ticks) * ns_per_tick_);
  }

  static bool uses_tsc() { return use_tsc_; }
  static double ns_per_tick() { return ns_per_tick_; }

 private:
  // Written once by calibrate() before the threads that read them start.
  static inline bool use_tsc_ = false;
  static inline double ns_per_tick_ = 1.0;
};

}  // namespace coproc::daemon
