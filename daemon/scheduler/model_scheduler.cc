#include "scheduler/model_scheduler.h"

#include <algorithm>
#include <utility>

#include "coproc/base/result.h"
#include "scheduler/batch_former.h"

namespace coproc::daemon::sched {

struct ModelScheduler::Plan {
  std::vector<Ordered> order;  // live requests in dispatch order; empty when none
  Candidate candidate;         // meaningful when order is not empty
  bool ready = false;
  uint64_t ready_at_ns = kNever;  // when waiting alone makes the candidate ready
};

ModelScheduler::ModelScheduler(Policy policy, MemoryEstimator estimator)
    : policy_(std::move(policy)), estimator_(std::move(estimator)) {
  check_policy(policy_);
  COPROC_CHECK(policy_.memory_limit_bytes == 0 || estimator_);
}

Admit ModelScheduler::admit(const Request& r, uint64_t now_ns) {
  COPROC_CHECK(r.rows >= 1);
  COPROC_CHECK(!queue_.contains(r.ticket));
  if (queue_.size() >= policy_.queue_limit) {
    ++stats_.rejected_queue_full;
    return Admit::kQueueFull;
  }
  const uint64_t arrival_ns = std::min(r.arrival_ns, now_ns);
  uint64_t deadline_ns = kNever;
  if (r.deadline_ns != 0) {
    deadline_ns = r.deadline_ns;
  } else if (policy_.default_timeout_ns != 0) {
    deadline_ns = saturating_add(arrival_ns, policy_.default_timeout_ns);
  }
  queue_.push({.ticket = r.ticket,
               .client = r.client,
               .priority = r.priority,
               .rows = r.rows,
               .length = r.length,
               .padded_length = padded_length_for(policy_, r.length),
               .deadline_ns = deadline_ns,
               .arrival_ns = arrival_ns});
  arrivals_.observe(arrival_ns, r.rows);
  ++stats_.admitted;
  return Admit::kAccepted;
}

bool ModelScheduler::cancel(uint32_t client, uint64_t ticket) {
  if (!queue_.cancel(client, ticket)) return false;
  ++stats_.cancelled;
  return true;
}

void ModelScheduler::expire(uint64_t now_ns, std::vector<uint64_t>* expired) {
  COPROC_CHECK(expired != nullptr);
  stats_.expired += queue_.take_expired(now_ns, expired);
}

ModelScheduler::Plan ModelScheduler::plan(uint64_t now_ns) const {
  Plan plan;
  plan.order = queue_.dispatch_order(now_ns, policy_.aging_ns);
  if (plan.order.empty()) return plan;
  plan.candidate = form_candidate(plan.order, policy_, estimator_);

  uint32_t target_rows = policy_.max_batch;
  uint64_t wait_ns = policy_.max_wait_ns;
  switch (policy_.mode) {
    case Mode::kFixed:
      break;  // only full, or the wait: target_rows == max_batch means full
    case Mode::kDynamic:
      target_rows = policy_.min_batch;
      break;
    case Mode::kAdaptive: {
      const AdaptiveTuning tuning = adaptive_tuning(plan.candidate.padded_length);
      target_rows = tuning.target_rows;
      wait_ns = tuning.wait_ns;
      break;
    }
  }
  const auto oldest = std::min_element(plan.order.begin(), plan.order.end(),
                                       [](const Ordered& a, const Ordered& b) {
                                         return a.request->arrival_ns < b.request->arrival_ns;
                                       });
  plan.ready_at_ns = saturating_add(oldest->request->arrival_ns, wait_ns);
  if (policy_.mode == Mode::kAdaptive && policy_.target != Target::kLatency) {
    // Waiting to fill only makes sense while requests keep arriving.
    plan.ready_at_ns = std::min(plan.ready_at_ns, arrivals_.stalled_at_ns());
  }
  plan.ready =
      plan.candidate.full || plan.candidate.rows >= target_rows || now_ns >= plan.ready_at_ns;
  return plan;
}

std::optional<Batch> ModelScheduler::next_batch(uint64_t now_ns) {
  Plan plan = this->plan(now_ns);
  if (plan.order.empty() || !plan.ready) return std::nullopt;
  Candidate& candidate = plan.candidate;
  if (policy_.mode != Mode::kAdaptive) {
    cut_to_preferred(plan.order, policy_.preferred_batch_sizes, &candidate);
  }

  Batch batch;
  batch.rows = candidate.rows;
  batch.padded_length = candidate.padded_length;
  batch.tickets.reserve(candidate.taken.size());
  batch.slices.reserve(candidate.taken.size());
  const bool bucketed = !policy_.length_buckets.empty();
  for (std::size_t k = 0; k < candidate.taken.size(); ++k) {
    const QueuedRequest& r = *plan.order[candidate.taken[k]].request;
    const uint32_t rows = taken_rows(plan.order, candidate, k);
    batch.tickets.push_back(r.ticket);
    batch.slices.push_back({.first_row = r.first_row, .rows = rows, .last = rows == r.rows});
    if (bucketed) {
      batch.padded_elements_wasted +=
          uint64_t{rows} * static_cast<uint64_t>(r.padded_length - r.length);
    }
  }
  batch.estimated_bytes = estimator_ ? estimator_(batch.rows, batch.padded_length) : 0;

  // The cursors read the order, whose pointers die with the removals below.
  queue_.advance_round_robin(plan.order, candidate.taken);
  for (std::size_t k = 0; k < batch.tickets.size(); ++k) {
    const Slice& slice = batch.slices[k];
    if (slice.last) {
      queue_.remove(batch.tickets[k]);
      ++stats_.batched_requests;
    } else {
      queue_.take_rows(batch.tickets[k], slice.rows);
    }
    if (slice.first_row > 0 || !slice.last) ++stats_.chunks;
  }

  ++stats_.batches;
  stats_.batched_rows += batch.rows;
  ++stats_.batch_rows_histogram[batch_rows_histogram_bucket(batch.rows)];
  stats_.padded_elements_wasted += batch.padded_elements_wasted;
  if (bucketed) {
    stats_.padded_elements_total +=
        uint64_t{batch.rows} * static_cast<uint64_t>(batch.padded_length);
  }
  return batch;
}

uint64_t ModelScheduler::next_event_ns(uint64_t now_ns) const {
  if (queue_.size() == 0) return kNever;
  const uint64_t earliest_deadline_ns = queue_.earliest_deadline_ns();
  if (earliest_deadline_ns <= now_ns) return now_ns;
  uint64_t event_ns =
      std::min(earliest_deadline_ns, queue_.next_aging_step_ns(now_ns, policy_.aging_ns));
  const Plan plan = this->plan(now_ns);
  if (!plan.order.empty() && !plan.ready) event_ns = std::min(event_ns, plan.ready_at_ns);
  return event_ns;
}

void ModelScheduler::record_execution(uint32_t rows, int64_t padded_length, uint64_t exec_ns) {
  COPROC_CHECK(rows >= 1);
  cost_.observe(rows, padded_length, exec_ns);
}

void ModelScheduler::set_policy(Policy policy) {
  check_policy(policy);
  COPROC_CHECK(policy.memory_limit_bytes == 0 || estimator_);
  policy_ = std::move(policy);
  queue_.rebucket([this](int64_t length) { return padded_length_for(policy_, length); });
}

AdaptiveTuning ModelScheduler::adaptive_tuning(int64_t padded_length) const {
  return tune_adaptive(policy_, arrivals_, cost_, padded_length);
}

}  // namespace coproc::daemon::sched
