// Model-based randomised test: random admits, cancels, expiries, batches and
// policy changes against a plain reference of what is queued. Every admitted
// request must leave exactly once (batch, expire or cancel), no batch may hold
// an unknown, duplicated, expired or mixed-bucket request or break the size and
// memory limits, and between now and next_event_ns() nothing may become ready.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "scheduler/model_scheduler.h"
#include "scheduler_test_support.h"

namespace coproc::daemon::sched {
namespace {

using namespace test_support;

constexpr uint64_t kBytesPerElement = 10;
uint64_t memory_estimate(uint32_t rows, int64_t padded_length) {
  return rows * kBytesPerElement * static_cast<uint64_t>(std::max<int64_t>(1, padded_length));
}

struct Expected {
  uint32_t client = 0;
  Priority priority = Priority::kNormal;
  uint32_t rows = 1;
  uint32_t rows_done = 0;  // dispatched in earlier chunks
  int64_t length = 0;
  uint64_t deadline_ns = kNever;
};

class ExactlyOnce {
 public:
  explicit ExactlyOnce(uint32_t seed)
      : random_(seed), scheduler_(random_policy(), memory_estimate) {}

  void run(int steps) {
    for (int step = 0; step < steps && !::testing::Test::HasFatalFailure(); ++step) {
      now_ns_ += pick(0, 300) * kUs;
      const uint64_t dice = pick(0, 99);
      if (dice < 40) {
        admit();
      } else if (dice < 50) {
        cancel();
      } else if (dice < 65) {
        expire(now_ns_);
      } else if (dice < 99) {
        next_batch();
      } else {
        scheduler_.set_policy(random_policy());
      }
      check_depth();
    }
    drain();
  }

 private:
  uint64_t pick(uint64_t low, uint64_t high) {
    return std::uniform_int_distribution<uint64_t>(low, high)(random_);
  }

  Policy random_policy() {
    Policy policy;
    policy.mode = static_cast<Mode>(pick(0, 2));
    policy.target = static_cast<Target>(pick(0, 2));
    policy.max_batch = static_cast<uint32_t>(pick(1, 8));
    policy.min_batch = static_cast<uint32_t>(pick(1, policy.max_batch));
    policy.max_wait_ns = pick(0, 2000) * kUs;
    if (pick(0, 1) == 1) policy.preferred_batch_sizes = {1, policy.max_batch};
    if (policy.max_batch == 1) policy.preferred_batch_sizes = {1};
    policy.p99_goal_ns = pick(1, 10) * kMs;
    policy.queue_limit = static_cast<uint32_t>(pick(4, 48));
    policy.default_timeout_ns = pick(0, 1) == 1 ? pick(1, 5000) * kUs : 0;
    policy.aging_ns = pick(0, 1) == 1 ? pick(1, 3000) * kUs : 0;
    if (pick(0, 1) == 1) policy.length_buckets = {8, 16, 32};
    policy.memory_limit_bytes = pick(0, 1) == 1 ? pick(50, 400) : 0;
    policy.chunk_requests = pick(0, 1) == 1;
    policy_ = policy;
    return policy;
  }

  void admit() {
    Request r;
    r.ticket = next_ticket_++;
    r.client = static_cast<uint32_t>(pick(0, 4));
    r.priority = static_cast<Priority>(pick(0, 3));
    r.rows = pick(0, 19) == 0 ? 10 : static_cast<uint32_t>(pick(1, 3));
    r.length = static_cast<int64_t>(pick(0, 40));
    r.deadline_ns = pick(0, 2) == 0 ? now_ns_ + pick(0, 3000) * kUs : 0;
    r.arrival_ns = now_ns_ - std::min(now_ns_, pick(0, 100) * kUs);
    const bool room = queued_.size() < policy_.queue_limit;

    const Admit admitted = scheduler_.admit(r, now_ns_);

    ASSERT_EQ(admitted == Admit::kAccepted, room);
    if (!room) return;
    uint64_t deadline_ns = kNever;
    if (r.deadline_ns != 0) {
      deadline_ns = r.deadline_ns;
    } else if (policy_.default_timeout_ns != 0) {
      deadline_ns = r.arrival_ns + policy_.default_timeout_ns;
    }
    queued_[r.ticket] = {.client = r.client,
                         .priority = r.priority,
                         .rows = r.rows,
                         .length = r.length,
                         .deadline_ns = deadline_ns};
    ++admitted_;
  }

  void cancel() {
    if (next_ticket_ == 0) return;
    // Mostly a queued ticket; sometimes any ticket ever issued (likely gone).
    uint64_t ticket = pick(0, next_ticket_ - 1);
    if (!queued_.empty() && pick(0, 3) != 0) {
      ticket = std::next(queued_.begin(), static_cast<std::ptrdiff_t>(pick(0, queued_.size() - 1)))
                   ->first;
    }
    const auto it = queued_.find(ticket);
    const uint32_t owner = it == queued_.end() ? 0 : it->second.client;
    const uint32_t client = pick(0, 4) == 0 ? owner + 1 : owner;
    const bool expected = it != queued_.end() && client == owner;

    ASSERT_EQ(scheduler_.cancel(client, ticket), expected);
    if (expected) leave(ticket);
  }

  void expire(uint64_t now_ns) {
    std::vector<uint64_t> expired;
    scheduler_.expire(now_ns, &expired);
    std::set<uint64_t> expected;
    for (const auto& [ticket, request] : queued_) {
      if (request.deadline_ns <= now_ns) expected.insert(ticket);
    }
    ASSERT_EQ(std::set<uint64_t>(expired.begin(), expired.end()), expected);
    ASSERT_EQ(expired.size(), expected.size());
    for (const uint64_t ticket : expired) leave(ticket);
  }

  void next_batch() {
    const auto batch = scheduler_.next_batch(now_ns_);
    if (batch) {
      check_batch(*batch, now_ns_);
      // Feedback for kAdaptive's cost model, noisy so that fits vary.
      if (pick(0, 1) == 1)
        scheduler_.record_execution(batch->rows, batch->padded_length, pick(1, 2000) * kUs);
      return;
    }
    // Nothing may become ready before the event the caller would sleep until.
    const uint64_t event_ns = scheduler_.next_event_ns(now_ns_);
    ASSERT_GE(event_ns, now_ns_);
    if (event_ns == kNever || event_ns - now_ns_ < 2) return;
    const uint64_t before_event_ns =
        now_ns_ + pick(1, std::min<uint64_t>(event_ns - now_ns_ - 1, 5 * kMs));
    ASSERT_FALSE(scheduler_.next_batch(before_event_ns)) << "batch ready before next_event_ns";
    std::vector<uint64_t> expired;
    scheduler_.expire(before_event_ns, &expired);
    ASSERT_TRUE(expired.empty()) << "expiry before next_event_ns";
    now_ns_ = before_event_ns;
  }

  void check_batch(const Batch& batch, uint64_t now_ns) {
    ASSERT_FALSE(batch.tickets.empty());
    ASSERT_EQ(batch.slices.size(), batch.tickets.size());
    uint32_t rows = 0;
    for (std::size_t k = 0; k < batch.tickets.size(); ++k) {
      const uint64_t ticket = batch.tickets[k];
      const Slice& slice = batch.slices[k];
      const auto it = queued_.find(ticket);
      ASSERT_NE(it, queued_.end())
          << "ticket " << ticket << " not queued (lost, duplicated or unknown)";
      Expected& request = it->second;
      ASSERT_GT(request.deadline_ns, now_ns) << "expired request in a batch";
      ASSERT_EQ(padded_length_for(policy_, request.length), batch.padded_length) << "mixed buckets";
      ASSERT_EQ(slice.first_row, request.rows_done) << "a chunk skipped or repeated rows";
      ASSERT_GE(slice.rows, 1u);
      ASSERT_LE(slice.first_row + slice.rows, request.rows);
      ASSERT_EQ(slice.last, slice.first_row + slice.rows == request.rows);
      rows += slice.rows;
      if (slice.last) {
        leave(ticket);
      } else {
        ASSERT_TRUE(policy_.chunk_requests) << "a request split without chunk_requests";
        request.rows_done += slice.rows;
      }
    }
    ASSERT_EQ(rows, batch.rows);
    // With chunks, only a single row may pass the limits (it goes even over the memory cap).
    if (batch.tickets.size() > 1 || (policy_.chunk_requests && batch.rows > 1)) {
      ASSERT_LE(batch.rows, policy_.max_batch);
      if (policy_.memory_limit_bytes != 0) {
        ASSERT_LE(batch.estimated_bytes, policy_.memory_limit_bytes);
      }
    }
  }

  void leave(uint64_t ticket) {
    ASSERT_EQ(queued_.erase(ticket), 1u);
    ++left_;
  }

  void check_depth() {
    ASSERT_EQ(scheduler_.queued(), queued_.size());
    std::array<std::size_t, kPriorityLevels> by_priority{};
    for (const auto& [ticket, request] : queued_)
      ++by_priority[static_cast<std::size_t>(request.priority)];
    ASSERT_EQ(scheduler_.queued_by_priority(), by_priority);
  }

  // Far in the future everything still queued expires or is ready.
  void drain() {
    constexpr uint64_t kFarFutureNs = 1'000'000 * kMs;
    now_ns_ += kFarFutureNs;
    expire(now_ns_);
    while (auto batch = scheduler_.next_batch(now_ns_)) {
      check_batch(*batch, now_ns_);
      if (::testing::Test::HasFatalFailure()) return;
    }
    const Stats& stats = scheduler_.stats();
    EXPECT_TRUE(queued_.empty());
    EXPECT_EQ(scheduler_.queued(), 0u);
    EXPECT_EQ(left_, admitted_);
    EXPECT_EQ(stats.admitted, admitted_);
    EXPECT_EQ(stats.admitted, stats.batched_requests + stats.expired + stats.cancelled);
  }

  // Declared before scheduler_: its initialiser calls random_policy(), which
  // draws from random_ and records policy_.
  std::mt19937 random_;
  Policy policy_;
  ModelScheduler scheduler_;
  std::map<uint64_t, Expected> queued_;
  uint64_t now_ns_ = 0;
  uint64_t next_ticket_ = 0;
  uint64_t admitted_ = 0;
  uint64_t left_ = 0;
};

TEST(SchedulerExactlyOnce, shouldLetEveryAdmittedRequestLeaveExactlyOnceUnderRandomOperations) {
  constexpr uint32_t kSeeds = 50;
  constexpr int kStepsPerSeed = 3000;
  for (uint32_t seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    ExactlyOnce(seed).run(kStepsPerSeed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace coproc::daemon::sched
