#include "platform/cycle_clock.h"

#include <time.h>

#include <fstream>
#include <string>

namespace coproc::daemon {

namespace {
constexpr timespec kCalibrationSleep = {0, 20'000'000};  // 20 ms

bool invariant_tsc() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" constant_tsc") != std::string::npos &&
             line.find(" nonstop_tsc") != std::string::npos;
    }
  }
  return false;
}
}  // namespace

void CycleClock::calibrate() {
#if defined(__x86_64__)
  if (!invariant_tsc()) return;
  int64_t ns0 = ring::monotonic_ns();
  uint64_t tsc0 = __rdtsc();
  ::nanosleep(&kCalibrationSleep, nullptr);
  int64_t ns1 = ring::monotonic_ns();
  uint64_t tsc1 = __rdtsc();
  if (tsc1 <= tsc0 || ns1 <= ns0) return;
  ns_per_tick_ = static_cast<double>(ns1 - ns0) / static_cast<double>(tsc1 - tsc0);
  use_tsc_ = true;
#endif
}

}  // namespace coproc::daemon
