#include "scheduler/batch_former.h"

#include <algorithm>

#include "coproc/base/result.h"

namespace coproc::daemon::sched {

Candidate form_candidate(std::span<const Ordered> order, const Policy& policy,
                         const MemoryEstimator& estimator) {
  COPROC_CHECK(!order.empty());
  const auto fits = [&](uint64_t rows, int64_t padded_length) {
    if (rows > policy.max_batch) return false;
    return policy.memory_limit_bytes == 0 ||
           estimator(static_cast<uint32_t>(rows), padded_length) <= policy.memory_limit_bytes;
  };

  // The most rows of `r` that fit next to `have` rows: the estimator grows with rows, so a
  // binary search over [0, room].
  const auto chunk_rows = [&](uint32_t have, const QueuedRequest& r) {
    uint32_t lo = 0;
    uint32_t hi = have >= policy.max_batch ? 0 : std::min(r.rows, policy.max_batch - have);
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      if (fits(uint64_t{have} + mid, r.padded_length)) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  };
  const auto split = [&](const QueuedRequest& r) {
    return policy.chunk_requests && !fits(r.rows, r.padded_length);
  };

  Candidate candidate;
  const QueuedRequest& first = *order.front().request;
  candidate.padded_length = first.padded_length;
  candidate.taken.push_back(0);
  candidate.rows = first.rows;
  if (split(first)) {
    // At least one row, even over the memory cap: one row runs alone, as a whole request would.
    candidate.rows = std::max<uint32_t>(chunk_rows(0, first), 1);
    if (candidate.rows < first.rows) candidate.chunk_rows = candidate.rows;
    candidate.full = true;
    return candidate;
  }
  for (std::size_t i = 1; i < order.size(); ++i) {
    const QueuedRequest& r = *order[i].request;
    if (r.padded_length != candidate.padded_length) continue;
    if (!fits(uint64_t{candidate.rows} + r.rows, candidate.padded_length)) {
      // A chunk fills the room only among requests of its own level: behind more urgent ones it
      // would make them wait for a whole chunk's execution instead of their own rows'.
      const bool same_level = order[i].level == order.front().level;
      const uint32_t room = split(r) && same_level ? chunk_rows(candidate.rows, r) : 0;
      if (room > 0) {
        candidate.taken.push_back(i);
        candidate.rows += room;
        candidate.chunk_rows = room;
      }
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

uint32_t taken_rows(std::span<const Ordered> order, const Candidate& candidate, std::size_t k) {
  if (candidate.chunk_rows > 0 && k + 1 == candidate.taken.size()) return candidate.chunk_rows;
  return order[candidate.taken[k]].request->rows;
}

void cut_to_preferred(std::span<const Ordered> order, std::span<const uint32_t> preferred_sizes,
                      Candidate* candidate) {
  if (preferred_sizes.empty() || candidate->rows <= preferred_sizes.front()) return;
  const uint32_t cut_rows =
      *std::prev(std::upper_bound(preferred_sizes.begin(), preferred_sizes.end(), candidate->rows));
  const std::size_t chunk = candidate->chunk_rows > 0 ? candidate->taken.size() - 1 : SIZE_MAX;
  std::size_t kept = 0;
  uint32_t rows = 0;
  uint32_t chunk_rows = 0;
  while (kept < candidate->taken.size()) {
    const uint32_t next_rows = taken_rows(order, *candidate, kept);
    if (rows + next_rows > cut_rows) {
      if (kept == chunk && rows < cut_rows) {
        chunk_rows = cut_rows - rows;  // a chunk is cut to land on the preferred size
        rows = cut_rows;
        ++kept;
      } else if (kept == 0) {
        rows = next_rows;  // the first request stays even when it alone exceeds cut_rows
        ++kept;
      }
      break;
    }
    rows += next_rows;
    if (kept == chunk) chunk_rows = next_rows;
    ++kept;
  }
  candidate->taken.resize(kept);
  candidate->rows = rows;
  candidate->chunk_rows = chunk_rows;
}

}  // namespace coproc::daemon::sched
