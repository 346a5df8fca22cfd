// One reading of the stats page, summed over its writer blocks, and what is
// derived from a reading: percentiles estimated from the log-linear
// histograms, in-flight counts, uptime. Reading only loads atomics (and
// retries a client slot's seqlock), so it never slows the daemon.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "coproc/segment.h"
#include "coproc/stats/stats_page.h"

namespace coproc::stats {

// A heartbeat older than this means the daemon's control loop is stuck:
// the daemon beats every second (daemon/control/control.cc kHeartbeatMs).
inline constexpr uint64_t kStaleHeartbeatNs = 3'000'000'000;

// The snake_case names of the wire statuses (coproc/base/status.def), indexed by value.
extern const std::array<const char*, wire::kStatusCount> kStatusNames;
// Request priorities by value (coproc.h coproc_priority), as queue_depth is indexed.
extern const std::array<const char*, wire::kPriorityCount> kPriorityNames;
// Devices by index in the stats page.
extern const std::array<const char*, wire::kDeviceCount> kDeviceNames;
const char* state_name(uint32_t state);
const char* device_mode_name(uint64_t mode);

using LatencyHistogram = std::array<uint64_t, wire::kLatencyBuckets>;
using BatchHistogram = std::array<uint64_t, wire::kBatchSizeBuckets>;

struct ModelSnapshot {
  std::string name;
  uint32_t max_batch = 0;  // from the model table; 0: unknown
  uint64_t accepted = 0;
  std::array<uint64_t, wire::kStatusCount> completed{};
  uint64_t rejected_queue_full = 0;
  uint64_t rejected_invalid = 0;
  uint64_t expired = 0;
  uint64_t cancelled = 0;
  uint64_t dropped_client_gone = 0;
  std::array<uint64_t, wire::kPriorityCount> queue_depth{};
  uint64_t batches = 0;
  uint64_t batches_on_gpu = 0;
  uint64_t gpu_from_batch = 0;  // 0: every batch runs on the CPU
  uint64_t device_mode = 0;     // wire::DeviceMode
  uint64_t batch_rows = 0;
  BatchHistogram batch_size_histogram{};
  LatencyHistogram queue_ns_histogram{};  // one per request
  LatencyHistogram exec_ns_histogram{};   // one per batch
  LatencyHistogram e2e_ns_histogram{};    // one per OK request
  uint64_t queue_ns_sum = 0;
  uint64_t exec_ns_sum = 0;
  uint64_t e2e_ns_sum = 0;
  uint64_t padded_elements_wasted = 0;
  uint64_t padded_elements_total = 0;
  double requests_per_s = 0;  // over the daemon's last one-second interval
  double rows_per_s = 0;

  uint64_t completed_total() const;
  uint64_t rejected() const { return rejected_queue_full + rejected_invalid; }
  double mean_batch() const;
  // Padding waste in percent of the padded elements; negative: no padding data.
  double padding_waste_pct() const;
};

struct ClientSnapshot {
  uint32_t id = 0;
  int32_t pid = 0;
  uint32_t uid = 0;
  uint64_t connected_realtime_ns = 0;
  uint64_t requests = 0;
  uint64_t completed_ok = 0;
  uint64_t completed_error = 0;
  // Requests not answered yet (the counters are read one after the other, so
  // clamped at 0 when an answer is counted before its request was seen).
  uint64_t in_flight() const;
};

struct DeviceSnapshot {
  std::string kind;  // "cpu", "gpu"
  std::string name;
  bool present = false;
  uint64_t busy_ns = 0;
  uint64_t batches = 0;
  double busy_fraction = 0;  // over the daemon's last one-second interval
  uint64_t memory_bytes = 0;
};

struct DaemonSnapshot {
  int32_t pid = 0;
  uint32_t state = 0;  // wire::DaemonState
  std::string version;
  uint64_t epoch = 0;
  uint64_t uptime_ns = 0;
  uint64_t heartbeat_age_ns = 0;
  int32_t numa_node = -1;
  std::string cpus;
  uint32_t cpu_count = 0;
  uint32_t threads = 0;
  uint64_t rss_bytes = 0;
  std::string http_address;
  uint32_t http_port = 0;  // 0: the HTTP endpoint is off
  uint32_t max_clients = 0;
  uint64_t clients_connected = 0;
  uint64_t clients_total = 0;
  uint64_t clients_untracked = 0;
};

struct Snapshot {
  DaemonSnapshot daemon;
  uint64_t taken_ns = 0;  // CLOCK_MONOTONIC when read
  std::vector<ModelSnapshot> models;
  std::vector<ClientSnapshot> clients;  // connected, by slot
  std::vector<DeviceSnapshot> devices;  // cpu, gpu
};

Snapshot read_snapshot(const StatsPage& page);

// One client slot under its seqlock: false when the slot is empty, or kept
// changing for every retry.
bool read_client(const wire::ClientStats& slot, ClientSnapshot* out);

// The value below which a fraction `q` (0..1) of the observations lie,
// interpolated linearly inside the bucket that holds it (segment.h: a bucket
// is at most a quarter of its lower edge wide). 0 when the histogram is empty.
template <std::size_t N>
double bucket_percentile(const std::array<uint64_t, N>& histogram, double q);
extern template double bucket_percentile(const LatencyHistogram&, double);
extern template double bucket_percentile(const BatchHistogram&, double);

}  // namespace coproc::stats
