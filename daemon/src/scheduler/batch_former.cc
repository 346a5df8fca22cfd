#include "scheduler/batch_former.h"

#include <algorithm>

#include "common/result.h"

namespace coproc::daemon::sched {

Candidate form_candidate(std::span<const Ordered> order, const Policy& policy,
                         const MemoryEstimator& estimator) {
  COPROC_CHECK(!order.empty());
  const auto fits = [&](uint64_t rows, int64_t padded_length) {
    if (rows > policy.max_batch) return false;
    return policy.memory_limit_bytes == 0 ||
           estimator(static_cast<uint32_t>(rows), padded_length) <= policy.memory_limit_bytes;
  };

  Candidate candidate;
  candidate.padded_length = order.front().request->padded_length;
  candidate.taken.push_back(0);
  candidate.rows = order.front().request->rows;
  for (std::size_t i = 1; i < order.size(); ++i) {
    const QueuedRequest& r = *order[i].request;
    if (r.padded_length != candidate.padded_length) continue;
    if (!fits(uint64_t{candidate.rows} + r.rows, candidate.padded_length)) {
      candidate.full = true;
      return candidate;
    }
    candidate.taken.push_back(i);
    candidate.rows += r.rows;
  }
  // Full when not even one more row would fit: max_batch reached, or the
  // memory cap leaves no room (a lone request over the cap included).
  candidate.full = !fits(uint64_t{candidate.rows} + 1, candidate.padded_length);
  return candidate;
}

void cut_to_preferred(std::span<const Ordered> order, std::span<const uint32_t> preferred_sizes,
                      Candidate* candidate) {
  if (preferred_sizes.empty() || candidate->rows <= preferred_sizes.front()) return;
  const uint32_t cut_rows =
      *std::prev(std::upper_bound(preferred_sizes.begin(), preferred_sizes.end(), candidate->rows));
  std::size_t kept = 1;  // the first request stays even when it alone exceeds cut_rows
  uint32_t rows = order[candidate->taken.front()].request->rows;
  while (kept < candidate->taken.size()) {
    const uint32_t next_rows = order[candidate->taken[kept]].request->rows;
    if (rows + next_rows > cut_rows) break;
    rows += next_rows;
    ++kept;
  }
  candidate->taken.resize(kept);
  candidate->rows = rows;
}

}  // namespace coproc::daemon::sched
