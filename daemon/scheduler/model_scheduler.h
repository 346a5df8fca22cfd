// ModelScheduler: one model's request queue and batch former (DESIGN.md
// section 5). Pure logic: no threads, no clock reads, no I/O. Every call takes
// now_ns (CLOCK_MONOTONIC ns, non-decreasing across calls) from the caller, so
// the same calls give the same batches. It keeps small metadata per request
// and an opaque ticket the caller maps to its own request storage.
//
// Contract:
//   - Not thread-safe: one owner thread per instance (or the caller's lock).
//   - Exactly once: every accepted request leaves the queue exactly once, in
//     one of three ways the caller answers: in a Batch from next_batch() (it
//     runs; with its last Slice when it runs in chunks), through expire()
//     (DEADLINE_EXCEEDED), or through a cancel() that returned true
//     (CANCELLED). A request refused by admit() never entered.
//   - Broken preconditions (a nonsense Policy, a ticket already queued, rows
//     of 0, a negative length, a memory cap without an estimator) are
//     programmer errors and abort (COPROC_CHECK).
//
// Order. Higher priority first: critical, high, normal, low. Within a level,
// clients take turns round-robin (one request per client per turn, a rotating
// cursor) and each client's requests go FIFO, so one process flooding a level
// cannot starve the others at that level. Details in request_queue.h.
//
// Starvation guard (aging). Strict priority alone lets a permanent stream of
// high-priority requests hold a low one forever. So a request that has waited
// aging_ns is served as one level more urgent, two levels after 2 * aging_ns,
// and so on, capped at kHigh: kCritical is never impersonated, so critical
// requests keep their guarantee. Once aged to kHigh a request takes turns with
// the high-priority clients. Bound: under any load without critical requests,
// a low request is dispatched within 2 * aging_ns (a normal one within
// aging_ns) plus one round-robin turn at kHigh (one batch while the clients
// at kHigh number at most max_batch) plus the batch already running.
// aging_ns = 0 turns aging off (strict priority).
//
// Deadlines. A request's deadline is its own deadline_ns, else arrival_ns +
// default_timeout_ns when that is set, else none; fixed at admission. A
// request whose deadline is <= now is never put in a batch: next_batch()
// passes over it and leaves it queued for expire(), which removes it and
// hands its ticket back. next_event_ns() includes the earliest deadline, so a
// caller that sleeps until then answers DEADLINE_EXCEEDED promptly, not when
// the next batch happens to form. A request admitted already past its deadline
// is accepted and leaves through the next expire().
//
// Cancellation. cancel(client, ticket) removes a queued request of that client
// and returns true; it never runs. It returns false when the ticket is not
// queued (already in a batch, expired, cancelled, never admitted) or belongs
// to another client; what happens to a running request is the caller's.
//
// Admission. With queue_limit requests queued, admit() returns kQueueFull at
// once (the caller answers RESOURCE_EXHAUSTED). Lowering queue_limit with
// set_policy() below queued() keeps the queued ones and refuses until below.
// arrival_ns later than now_ns is taken as now_ns.
//
// Batch formation. next_batch() is called when the device is free. It forms
// the candidate from the live (deadline > now) requests in order: one length
// bucket, at most max_batch rows and at most memory_limit_bytes by the
// estimator, a single request over either limit alone (batch_former.h). It
// dispatches the candidate (returns it, removing its requests) when it is
// ready, else returns nullopt and the caller waits until next_event_ns().
// "oldest" below is the longest-waiting live request in the whole queue, so
// no request waits past its mode's wait while the device is free. "full": the
// candidate can grow no further (max_batch rows, or the next request of its
// bucket does not fit by rows or memory).
//   kFixed:    ready when full, or oldest has waited >= max_wait_ns.
//   kDynamic:  ready when the candidate has >= min_batch rows, when full, or
//              when oldest has waited >= max_wait_ns.
//   kAdaptive: ready when the candidate has >= target rows, when full, or
//              when oldest has waited >= wait, with (target, wait) from
//              tune_adaptive() for the candidate's bucket: formulas in
//              adaptive_model.h. In short: kLatency runs what is queued at
//              once; kThroughput waits (at most max_wait_ns) to fill max_batch
//              when a batch's fixed cost outweighs the arrival interval, else
//              runs at once; kBalanced waits for the largest batch whose
//              expected fill time plus execution fits in p99_goal_ns / 2.
//              Before the first record_execution() it behaves as kDynamic.
//              A ready candidate goes whole (up to max_batch and the memory
//              cap), even past the target: under load, larger batches drain
//              the queue sooner.
// Preferred sizes (kFixed, kDynamic): a ready candidate with more rows than
// the smallest preferred size is cut to the largest preferred size <= its
// rows, rounding down to whole requests (batch_former.h). kAdaptive ignores
// them: its target replaces them.
//
// Chunks (Policy::chunk_requests). A request that does not fit a batch by
// itself (rows over max_batch, or over the memory cap) is dispatched a chunk
// at a time: each next_batch() that reaches it in the order takes as many of
// its rows as fit (batch_former.h) and leaves the rest queued, in the same
// place with the same priority, arrival and deadline, so between two chunks
// the order is decided afresh: a more urgent request goes first, and at its
// own level the request takes its round-robin turn like any other (so two
// clients' big requests alternate chunks). Batch::slices says which rows
// each ticket brings; Slice::last marks the chunk with which the request
// leaves the queue. Until then it is still queued: expire() and cancel() take
// it with its remaining rows (the caller answers for the rows already run).
// Aging counts from its arrival, as for any request.
//
// Length buckets. With length_buckets, a request belongs to the first bucket
// whose bound >= its length, padded to that bound; a request longer than every
// bound is not refused: it is in a bucket of its own length (padded to
// itself, no waste), shared only with requests of exactly that length. A
// batch holds one bucket: that of the first request in order; the others of
// that bucket follow in order, the rest wait. Batch::padded_elements_wasted =
// sum of rows * (padded_length - length). Without buckets padded_length is 0.
// Readiness is judged on the head's bucket alone: a full batch of another
// bucket waits behind it until the head's batch is ready (at the latest when
// the oldest request's wait runs out).
//
// next_event_ns(now): the earliest time after now at which next_batch() or
// expire() could answer differently without a new admit, cancel,
// record_execution or set_policy: the earliest deadline, the wait of a
// candidate that is not ready yet running out, or an aging step (which can
// change the head's bucket). now_ns itself when a deadline has already passed
// (expire() is due); kNever when nothing is queued. A candidate that is ready
// now is no event: the caller asks next_batch() whenever the device is free.
//
// set_policy(): takes effect at the next call. Queued requests stay, with
// their deadlines; they are re-bucketed under the new length_buckets. Stats,
// round-robin cursors and the adaptive models carry over.
//
// Costs (n queued): admit, cancel O(log n); next_batch, next_event_ns
// O(n log clients); expire O(k log n) for k expired.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "scheduler/adaptive_model.h"
#include "scheduler/request_queue.h"
#include "scheduler/scheduler_types.h"

namespace coproc::daemon::sched {

class ModelScheduler {
 public:
  // `estimator` may be empty when policy.memory_limit_bytes is 0; then
  // Batch::estimated_bytes is 0.
  ModelScheduler(Policy policy, MemoryEstimator estimator);

  Admit admit(const Request& r, uint64_t now_ns);
  // A queued request of `client`: removed, true. Otherwise false.
  bool cancel(uint32_t client, uint64_t ticket);
  // Removes every queued request whose deadline is <= now_ns; appends their
  // tickets (earliest deadline first).
  void expire(uint64_t now_ns, std::vector<uint64_t>* expired);
  // Called when the device is free: a batch to run now, or nullopt to keep waiting.
  std::optional<Batch> next_batch(uint64_t now_ns);
  // See "next_event_ns" above. The caller sleeps until then or a new arrival.
  uint64_t next_event_ns(uint64_t now_ns) const;
  // Feedback for kAdaptive's cost model: a batch of `rows` rows padded to
  // padded_length ran in exec_ns. Recorded in every mode, so a switch to
  // kAdaptive starts informed.
  void record_execution(uint32_t rows, int64_t padded_length, uint64_t exec_ns);
  void set_policy(Policy policy);

  std::size_t queued() const { return queue_.size(); }
  // By the priority the requests were admitted with (aging does not move them here).
  std::array<std::size_t, kPriorityLevels> queued_by_priority() const {
    return queue_.size_by_priority();
  }
  const Stats& stats() const { return stats_; }
  const Policy& policy() const { return policy_; }
  // kAdaptive's current (target, wait) for a batch padded to padded_length;
  // for observability and tests. Meaningful in any mode.
  AdaptiveTuning adaptive_tuning(int64_t padded_length) const;

 private:
  struct Plan;
  // The candidate at now_ns and whether it is ready; empty order when nothing is live.
  Plan plan(uint64_t now_ns) const;

  Policy policy_;
  MemoryEstimator estimator_;
  RequestQueue queue_;
  ArrivalRateEstimator arrivals_;
  CostModel cost_;
  Stats stats_;
};

}  // namespace coproc::daemon::sched
