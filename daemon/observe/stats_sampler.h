// The parts of the stats page no hot-path thread should compute, refreshed
// once a second on the control loop: each model's request and row rates,
// each device's busy share and memory, the daemon's threads and RSS. It reads
// the page as any tool does (stats::read_snapshot) and writes only the fields
// segment.h gives to the control loop.
#pragma once

#include <cstdint>
#include <vector>

#include "coproc/stats/stats_page.h"
#include "observe/registry.h"

namespace coproc::daemon {

class StatsSampler {
 public:
  // cpu_memory_bytes: what the CPU device holds for the models (their weights), fixed after load.
  StatsSampler(Registry& registry, uint64_t cpu_memory_bytes);

  // now_ns: CLOCK_MONOTONIC.
  void sample(uint64_t now_ns);

  const stats::StatsPage& page() const { return page_; }

 private:
  Registry& registry_;
  stats::StatsPage page_;
  uint64_t last_ns_ = 0;
  std::vector<uint64_t> last_ok_;
  std::vector<uint64_t> last_rows_;
  uint64_t last_busy_ns_[wire::kDeviceCount] = {};
};

// From /proc/self: the process's threads and resident bytes; 0 when unreadable.
uint32_t process_threads();
uint64_t process_rss_bytes();

}  // namespace coproc::daemon
