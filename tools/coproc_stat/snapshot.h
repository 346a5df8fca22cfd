// One reading of the daemon's stats page, and what coproc-stat derives from
// it: percentiles estimated from the log2 histograms, rates between two
// readings, and tuning suggestions. Reading only loads relaxed atomics from
// the read-only registry mapping, so it never slows the daemon.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "coproc/segment.h"
#include "registry_view.h"

namespace coproc::stat {

// A heartbeat older than this means the daemon's control loop is stuck:
// the daemon beats every second (daemon/src/control.cc kHeartbeatMs).
inline constexpr uint64_t kStaleHeartbeatNs = 3'000'000'000;

// The snake_case names of coproc.fb.Status, indexed by value.
extern const std::array<const char*, wire::kStatusCount> kStatusNames;
// Request priorities by value (coproc.h coproc_priority), as queue_depth is indexed.
extern const std::array<const char*, wire::kPriorityCount> kPriorityNames;
const char* state_name(uint32_t state);

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
  uint64_t batch_rows = 0;
  std::array<uint64_t, wire::kBatchSizeBuckets> batch_size_histogram{};
  std::array<uint64_t, wire::kLatencyBuckets> queue_ns_histogram{};  // one per request
  std::array<uint64_t, wire::kLatencyBuckets> exec_ns_histogram{};   // one per batch
  uint64_t queue_ns_sum = 0;
  uint64_t exec_ns_sum = 0;
  uint64_t padded_elements_wasted = 0;
  uint64_t padded_elements_total = 0;

  uint64_t completed_total() const;
  uint64_t rejected() const { return rejected_queue_full + rejected_invalid; }
  double mean_batch() const;
  // Padding waste in percent of the padded elements; negative: no padding data.
  double padding_waste_pct() const;
};

struct Snapshot {
  int32_t daemon_pid = 0;
  uint32_t state = 0;  // wire::DaemonState
  uint64_t heartbeat_age_ns = 0;
  uint64_t taken_ns = 0;  // CLOCK_MONOTONIC when read
  std::vector<ModelSnapshot> models;
};

Snapshot read_snapshot(const observer::RegistryView& view);

// The value below which a fraction `q` (0..1) of the observations lie,
// interpolated linearly inside the log2 bucket that holds it: bucket b holds
// [2^b, 2^(b+1)) (b = 0 also holds 0), so the answer is off by at most a
// factor of two. 0 when the histogram is empty.
template <std::size_t N>
double bucket_percentile(const std::array<uint64_t, N>& histogram, double q);
extern template double bucket_percentile(const std::array<uint64_t, wire::kLatencyBuckets>&,
                                         double);

// Bucket b's largest value: 2^(b+1) - 1.
inline double bucket_upper(uint32_t b) { return static_cast<double>((uint64_t{2} << b) - 1); }

struct Suggestion {
  std::string model;
  std::string text;  // with the numbers that triggered it
};

std::vector<Suggestion> suggest(const Snapshot& s);

}  // namespace coproc::stat
