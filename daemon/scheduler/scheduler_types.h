// The scheduler's vocabulary for one model: priorities, batching modes, the
// per-model Policy, what the scheduler knows of a request (Request) and what it
// hands back (Batch, Stats). Pure data plus the policy's invariant check; the
// semantics live in model_scheduler.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace coproc::daemon::sched {

// Lower value = more urgent. The values index per-priority arrays.
enum class Priority : uint8_t { kCritical = 0, kHigh = 1, kNormal = 2, kLow = 3 };
inline constexpr std::size_t kPriorityLevels = 4;

enum class Mode : uint8_t { kFixed, kDynamic, kAdaptive };
enum class Target : uint8_t { kLatency, kThroughput, kBalanced };

// "No deadline" / "never": the far end of CLOCK_MONOTONIC nanoseconds.
inline constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

// a + b, stuck at kNever instead of wrapping.
constexpr uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > kNever - b ? kNever : a + b;
}

// One model's batching policy. The config layer refuses bad values with a
// message; check_policy() is the scheduler's own guard and aborts on any value
// that breaks the invariants written next to each field.
struct Policy {
  Mode mode = Mode::kDynamic;
  uint32_t max_batch = 32;  // >= 1; rows per batch (a request contributes its own row count)
  uint32_t min_batch = 1;   // in [1, max_batch]; kDynamic (and kAdaptive before feedback) only
  uint64_t max_wait_ns = 1'000'000;
  // Strictly ascending, each in [1, max_batch]; may be empty. kFixed and kDynamic only.
  std::vector<uint32_t> preferred_batch_sizes;
  Target target = Target::kBalanced;  // kAdaptive only
  uint64_t p99_goal_ns = 5'000'000;   // > 0; kAdaptive + kBalanced: the p99 latency goal
  uint32_t queue_limit = 1024;        // >= 1; requests queued at most; beyond: kQueueFull
  uint64_t default_timeout_ns = 0;    // 0 = none; a request without deadline gets arrival + this
  uint64_t aging_ns = 10'000'000;     // starvation guard step, 0 = off
  // Strictly ascending upper bounds (each >= 1) for the variable-length
  // dimension; empty = no bucketing.
  std::vector<int64_t> length_buckets;
  uint64_t memory_limit_bytes = 0;  // 0 = no cap; a cap needs a MemoryEstimator
  // A request that does not fit a batch by itself (more rows than max_batch, or over
  // memory_limit_bytes) runs in chunks of rows that do, instead of alone and whole. Off: the
  // caller must be able to run any row range of a request on its own (dim 0 is the batch).
  bool chunk_requests = false;
};

// Aborts (COPROC_CHECK) when `policy` breaks an invariant written on its fields.
void check_policy(const Policy& policy);

// The length a request of `length` (>= 0) is padded to under `policy`, which is
// also the identity of its bucket: 0 without bucketing; else the first bound >=
// length; a length above every bound is its own bucket, padded to itself.
int64_t padded_length_for(const Policy& policy, int64_t length);

// What the scheduler knows of one request.
struct Request {
  uint64_t ticket = 0;  // caller's handle, unique among queued requests
  uint32_t client = 0;  // client id, for round-robin fairness
  Priority priority = Priority::kNormal;
  uint32_t rows = 1;         // its batch-dimension size, >= 1
  int64_t length = 0;        // value of the variable-length dimension, >= 0; 0 when none
  uint64_t deadline_ns = 0;  // absolute CLOCK_MONOTONIC, 0 = none (default_timeout applies)
  uint64_t arrival_ns = 0;   // stamped by the daemon when it read the request
};

// The rows of one request a batch runs: all of them, or one chunk (chunk_requests).
struct Slice {
  uint32_t first_row = 0;  // rows of the request dispatched in earlier chunks
  uint32_t rows = 0;       // >= 1
  bool last = true;        // the request's final rows: it has left the queue
};

struct Batch {
  std::vector<uint64_t> tickets;        // in dispatch order
  std::vector<Slice> slices;            // parallel to tickets
  uint32_t rows = 0;                    // sum of the requests' rows
  int64_t padded_length = 0;            // bucket bound the batch is padded to (0 when not bucketed)
  uint64_t padded_elements_wasted = 0;  // sum over requests of rows * (padded_length - length)
  uint64_t estimated_bytes = 0;         // from the MemoryEstimator (0 without one)
};

// Activation memory of a batch of `rows` rows padded to `padded_length`;
// supplied by the model layer. Assumed non-decreasing in rows.
using MemoryEstimator = std::function<uint64_t(uint32_t rows, int64_t padded_length)>;

enum class Admit { kAccepted, kQueueFull };

// Batch-size histogram: bucket k counts batches of rows in [2^k, 2^(k+1)); the
// last bucket is open-ended (2^15 rows and more).
inline constexpr std::size_t kBatchRowsHistogramBuckets = 16;
std::size_t batch_rows_histogram_bucket(uint32_t rows);

// Monotonic counters since construction (set_policy keeps them). Invariant:
// admitted == batched_requests + expired + cancelled + queued(); a request
// counts as batched when its last slice is.
struct Stats {
  uint64_t admitted = 0;
  uint64_t rejected_queue_full = 0;
  uint64_t expired = 0;
  uint64_t cancelled = 0;
  uint64_t batches = 0;
  uint64_t batched_requests = 0;
  uint64_t batched_rows = 0;  // mean batch size = batched_rows / batches
  uint64_t chunks = 0;        // slices of requests that ran in chunks, the last ones included
  std::array<uint64_t, kBatchRowsHistogramBuckets> batch_rows_histogram{};
  // Elements of the variable-length dimension: total = sum of rows *
  // padded_length over batches, wasted = the padding part of it. Both stay 0
  // without bucketing.
  uint64_t padded_elements_wasted = 0;
  uint64_t padded_elements_total = 0;
};

}  // namespace coproc::daemon::sched
