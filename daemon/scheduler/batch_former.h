// Which requests the next batch would take, before any decision whether to
// dispatch it now: the candidate. Pure functions over a dispatch order.
//
// Candidate rules:
//   - One length bucket: the bucket (padded_length) of the first request in
//     the order; requests of other buckets are passed over.
//   - Strict order within the bucket: requests are taken while they fit; the
//     first one that does not fit ends the candidate, so nothing later jumps
//     ahead of it (it heads a later batch).
//   - Fit: rows <= max_batch and, with a memory cap, estimator(rows,
//     padded_length) <= memory_limit_bytes. The first request always goes in,
//     however large: without chunk_requests a request over either limit runs
//     alone.
//   - Chunks (chunk_requests): a request that does not fit by itself is split.
//     When it is the first, the candidate takes as many of its rows as fit (at
//     least one); when it comes later and is served at the same level as the
//     first, as many as fit in the room the requests before it left (none, or
//     a more urgent first request: the candidate ends before it, so a critical
//     request does not wait for a chunk's worth of low rows in its own batch).
//     Either way it is the last request taken and the candidate is full. A
//     request that fits by itself is never split: it waits whole for a batch
//     with room.
//   - full: the candidate can grow no further (it reached max_batch rows, or a
//     next request of its bucket does not fit). Waiting cannot make it larger.
//
// Preferred sizes (cut_to_preferred): when the candidate has more rows than
// the smallest preferred size, P = the largest preferred size <= its rows, and
// the candidate is cut to its longest prefix of at most P rows (rows cannot be
// split, so a prefix that cannot land exactly on P rounds down; a first
// request larger than P stays, alone). A chunk is cut too: it ends the prefix
// with just the rows that land it on P.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "scheduler/request_queue.h"
#include "scheduler/scheduler_types.h"

namespace coproc::daemon::sched {

struct Candidate {
  std::vector<std::size_t> taken;  // indices into the order, ascending
  uint32_t rows = 0;
  int64_t padded_length = 0;
  bool full = false;
  // > 0: the last taken request is a chunk, and goes with only this many of its rows.
  uint32_t chunk_rows = 0;
};

// The rows candidate.taken[k] brings to the batch.
uint32_t taken_rows(std::span<const Ordered> order, const Candidate& candidate, std::size_t k);

// `order` must not be empty.
Candidate form_candidate(std::span<const Ordered> order, const Policy& policy,
                         const MemoryEstimator& estimator);

void cut_to_preferred(std::span<const Ordered> order, std::span<const uint32_t> preferred_sizes,
                      Candidate* candidate);

}  // namespace coproc::daemon::sched
