#include "observe/stats_sampler.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "coproc/kernels/opencl.h"
#include "coproc/stats/snapshot.h"

namespace coproc::daemon {

namespace {
// Rates are stored times 1000, busy shares in parts per million (segment.h).
constexpr double kRateScale = 1000.0;
constexpr double kPpm = 1e6;

uint64_t per_second_scaled(uint64_t delta, double seconds) {
  return static_cast<uint64_t>(static_cast<double>(delta) / seconds * kRateScale + 0.5);
}
}  // namespace

uint32_t process_threads() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  uint32_t n = 0;
  while (const dirent* e = ::readdir(dir)) n += e->d_name[0] != '.' ? 1 : 0;
  ::closedir(dir);
  return n;
}

uint64_t process_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int read = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return read == 2 ? resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

StatsSampler::StatsSampler(Registry& registry, uint64_t cpu_memory_bytes) : registry_(registry) {
  std::string error;
  // The daemon's own registry: a failure is a bug in the layout code, not an input.
  COPROC_CHECK(page_.open(registry.data(), registry.registry_bytes(), &error));
  last_ok_.assign(page_.models().size(), 0);
  last_rows_.assign(page_.models().size(), 0);
  // relaxed (here and below): standalone gauges; segment.h's contract for readers.
  registry_.device_stats(0).memory_bytes.store(cpu_memory_bytes, std::memory_order_relaxed);
}

void StatsSampler::sample(uint64_t now_ns) {
  wire::DaemonInfo& info = registry_.daemon_info();
  info.threads.store(process_threads(), std::memory_order_relaxed);
  info.rss_bytes.store(process_rss_bytes(), std::memory_order_relaxed);
  if (registry_.device_stats(1).present != 0) {
    registry_.device_stats(1).memory_bytes.store(kernels::opencl::buffer_bytes_in_use(),
                                                 std::memory_order_relaxed);
  }

  const stats::Snapshot s = stats::read_snapshot(page_);
  const bool first = last_ns_ == 0;
  const double seconds = first ? 0.0 : static_cast<double>(now_ns - last_ns_) / 1e9;
  last_ns_ = now_ns;
  for (std::size_t m = 0; m < s.models.size(); ++m) {
    const uint64_t ok = s.models[m].completed[0];
    const uint64_t rows = s.models[m].batch_rows;
    if (!first && seconds > 0) {
      wire::ModelStats& block0 =
          registry_.model_stats(static_cast<uint32_t>(m * page_.blocks_per_model()));
      block0.requests_per_s_milli.store(per_second_scaled(ok - last_ok_[m], seconds),
                                        std::memory_order_relaxed);
      block0.rows_per_s_milli.store(per_second_scaled(rows - last_rows_[m], seconds),
                                    std::memory_order_relaxed);
    }
    last_ok_[m] = ok;
    last_rows_[m] = rows;
  }
  for (std::size_t d = 0; d < s.devices.size() && d < wire::kDeviceCount; ++d) {
    const uint64_t busy = s.devices[d].busy_ns;
    if (!first && seconds > 0) {
      const double share = static_cast<double>(busy - last_busy_ns_[d]) / (seconds * 1e9);
      registry_.device_stats(static_cast<uint32_t>(d))
          .busy_ppm.store(static_cast<uint64_t>(std::min(share, 1.0) * kPpm),
                          std::memory_order_relaxed);
    }
    last_busy_ns_[d] = busy;
  }
}

}  // namespace coproc::daemon
