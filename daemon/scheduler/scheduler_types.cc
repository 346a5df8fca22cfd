#include "scheduler/scheduler_types.h"

#include <algorithm>
#include <bit>

#include "coproc/base/result.h"

namespace coproc::daemon::sched {

void check_policy(const Policy& policy) {
  COPROC_CHECK(policy.max_batch >= 1);
  COPROC_CHECK(policy.min_batch >= 1 && policy.min_batch <= policy.max_batch);
  COPROC_CHECK(policy.queue_limit >= 1);
  COPROC_CHECK(policy.p99_goal_ns > 0);
  const auto& preferred = policy.preferred_batch_sizes;
  COPROC_CHECK(std::adjacent_find(preferred.begin(), preferred.end(), std::greater_equal<>()) ==
               preferred.end());
  COPROC_CHECK(preferred.empty() ||
               (preferred.front() >= 1 && preferred.back() <= policy.max_batch));
  const auto& buckets = policy.length_buckets;
  COPROC_CHECK(std::adjacent_find(buckets.begin(), buckets.end(), std::greater_equal<>()) ==
               buckets.end());
  COPROC_CHECK(buckets.empty() || buckets.front() >= 1);
}

int64_t padded_length_for(const Policy& policy, int64_t length) {
  COPROC_CHECK(length >= 0);
  const auto& buckets = policy.length_buckets;
  if (buckets.empty()) return 0;
  const auto bound = std::lower_bound(buckets.begin(), buckets.end(), length);
  return bound == buckets.end() ? length : *bound;
}

std::size_t batch_rows_histogram_bucket(uint32_t rows) {
  COPROC_CHECK(rows >= 1);
  const std::size_t log2_rows = static_cast<std::size_t>(std::bit_width(rows)) - 1;
  return std::min(log2_rows, kBatchRowsHistogramBuckets - 1);
}

}  // namespace coproc::daemon::sched
