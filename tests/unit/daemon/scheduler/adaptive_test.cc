// kAdaptive: the arrival-rate and cost models, the tuning they give for each
// target, and its effect on synthetic arrival traces.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "scheduler/adaptive_model.h"
#include "scheduler/model_scheduler.h"
#include "scheduler_test_support.h"

namespace coproc::daemon::sched {
namespace {

using ::testing::Each;
using namespace test_support;

// The synthetic device: a batch of b rows runs in kFixedNs + b * kPerRowNs.
constexpr uint64_t kFixedNs = 500 * kUs;
constexpr uint64_t kPerRowNs = 20 * kUs;
uint64_t exec_ns(uint32_t rows) { return kFixedNs + rows * kPerRowNs; }

constexpr uint64_t kP99GoalNs = 5 * kMs;
constexpr uint32_t kMaxBatch = 32;

Policy adaptive_policy(Target target) {
  Policy policy;
  policy.mode = Mode::kAdaptive;
  policy.target = target;
  policy.max_batch = kMaxBatch;
  policy.max_wait_ns = 2 * kMs;
  policy.p99_goal_ns = kP99GoalNs;
  policy.aging_ns = 0;
  return policy;
}

void feed_cost_samples(ModelScheduler& scheduler) {
  for (uint32_t rows = 1; rows <= kMaxBatch; ++rows)
    scheduler.record_execution(rows, 0, exec_ns(rows));
}

// Admits (and cancels again) `count` requests interval_ns apart, so the rate
// estimate has seen them; returns the time of the last one.
uint64_t feed_arrivals(ModelScheduler& scheduler, uint64_t count, uint64_t interval_ns) {
  constexpr uint32_t kClient = 1;
  uint64_t now_ns = 0;
  for (uint64_t ticket = 0; ticket < count; ++ticket) {
    now_ns = ticket * interval_ns;
    scheduler.admit(make_request(ticket, kClient, Priority::kNormal, now_ns), now_ns);
    scheduler.cancel(kClient, ticket);
  }
  return now_ns;
}

double mean(const std::vector<uint32_t>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

uint64_t max_latency_ns(const SimulationResult& result,
                        const std::vector<SimulatedRequest>& trace) {
  uint64_t worst_ns = 0;
  for (const auto& [ticket, complete_ns] : result.complete_ns_by_ticket) {
    worst_ns = std::max(worst_ns, complete_ns - trace[ticket].arrival_ns);
  }
  return worst_ns;
}

TEST(SchedulerCostModel, shouldRecoverFixedAndPerRowCostFromLinearSamples) {
  CostModel cost;

  for (uint32_t rows = 1; rows <= kMaxBatch; ++rows) cost.observe(rows, 0, exec_ns(rows));

  EXPECT_NEAR(cost.fixed_ns(), kFixedNs, 1e-6 * kFixedNs);
  EXPECT_NEAR(cost.per_element_ns(), kPerRowNs, 1e-6 * kPerRowNs);
}

TEST(SchedulerCostModel, shouldFitThroughTheOriginWhileEverySampleHasTheSameSize) {
  CostModel cost;

  for (int i = 0; i < 3; ++i) cost.observe(4, 0, 800 * kUs);

  EXPECT_EQ(cost.fixed_ns(), 0.0);
  EXPECT_NEAR(cost.predict_ns(8, 0), 1600.0 * kUs, 1e-6);
}

TEST(SchedulerCostModel, shouldFollowAMachineThatBecameSlower) {
  CostModel cost;
  for (int round = 0; round < 10; ++round) {
    for (uint32_t rows = 1; rows <= kMaxBatch; ++rows) cost.observe(rows, 0, exec_ns(rows));
  }

  for (int round = 0; round < 10; ++round) {
    for (uint32_t rows = 1; rows <= kMaxBatch; ++rows) cost.observe(rows, 0, 2 * exec_ns(rows));
  }

  EXPECT_NEAR(cost.predict_ns(kMaxBatch, 0), 2.0 * exec_ns(kMaxBatch), 0.01 * exec_ns(kMaxBatch));
}

TEST(SchedulerCostModel, shouldCountPaddedElementsNotRows) {
  CostModel cost;

  for (uint32_t rows = 1; rows <= 8; ++rows)
    cost.observe(rows, 16, kFixedNs + uint64_t{rows} * 16 * kUs);

  EXPECT_NEAR(cost.per_element_ns(), 1.0 * kUs, 1e-3);
  EXPECT_NEAR(cost.predict_ns(2, 32), kFixedNs + 64.0 * kUs, 1.0);
}

TEST(SchedulerArrivalRate, shouldBeUnknownBeforeTwoArrivals) {
  ArrivalRateEstimator arrivals;
  arrivals.observe(0, 1);

  EXPECT_TRUE(std::isinf(arrivals.ns_per_row()));
}

TEST(SchedulerArrivalRate, shouldMeasureTheIntervalPerRow) {
  ArrivalRateEstimator arrivals;

  for (uint64_t i = 0; i < 10; ++i) arrivals.observe(i * 100 * kUs, 2);

  EXPECT_DOUBLE_EQ(arrivals.ns_per_row(), 50.0 * kUs);
}

TEST(SchedulerAdaptive, shouldBehaveAsDynamicBeforeAnyExecutionFeedback) {
  Policy policy = adaptive_policy(Target::kBalanced);
  policy.min_batch = 3;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, 0), 0);

  const auto too_early = scheduler.next_batch(policy.max_wait_ns - 1);
  const auto on_time = scheduler.next_batch(policy.max_wait_ns);

  EXPECT_FALSE(too_early);
  EXPECT_TRUE(on_time);
}

TEST(SchedulerAdaptive, shouldDispatchAtOnceForTheLatencyTarget) {
  ModelScheduler scheduler(adaptive_policy(Target::kLatency), {});
  feed_cost_samples(scheduler);
  const uint64_t now_ns = feed_arrivals(scheduler, 100, 10 * kUs);  // fast: batching would pay
  scheduler.admit(make_request(1000, 1, Priority::kNormal, now_ns), now_ns);

  const auto batch = scheduler.next_batch(now_ns);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 1u);
}

TEST(SchedulerAdaptive, shouldPickTheLargestBalancedBatchThatFillsAndRunsWithinHalfTheGoal) {
  ModelScheduler scheduler(adaptive_policy(Target::kBalanced), {});
  feed_cost_samples(scheduler);
  constexpr uint64_t kIntervalNs = 100 * kUs;
  feed_arrivals(scheduler, 100, kIntervalNs);

  const AdaptiveTuning tuning = scheduler.adaptive_tuning(0);

  // B = floor((goal/2 - f + i) / (i + p)) = floor((2500 - 500 + 100) / 120) = 17.
  EXPECT_EQ(tuning.target_rows, 17u);
  EXPECT_NEAR(static_cast<double>(tuning.wait_ns), 16.0 * kIntervalNs, 1.0);
  EXPECT_LE((tuning.target_rows - 1) * kIntervalNs + exec_ns(tuning.target_rows), kP99GoalNs / 2);
  EXPECT_GT(tuning.target_rows * kIntervalNs + exec_ns(tuning.target_rows + 1), kP99GoalNs / 2);
}

TEST(SchedulerAdaptive, shouldChooseLargerBalancedBatchesForFasterArrivals) {
  ModelScheduler fast(adaptive_policy(Target::kBalanced), {});
  ModelScheduler slow(adaptive_policy(Target::kBalanced), {});
  feed_cost_samples(fast);
  feed_cost_samples(slow);
  feed_arrivals(fast, 100, 50 * kUs);
  feed_arrivals(slow, 100, 5 * kMs);

  const AdaptiveTuning fast_tuning = fast.adaptive_tuning(0);
  const AdaptiveTuning slow_tuning = slow.adaptive_tuning(0);

  EXPECT_GT(fast_tuning.target_rows, 16u);
  EXPECT_EQ(slow_tuning.target_rows, 1u);
  EXPECT_EQ(slow_tuning.wait_ns, 0u);
}

TEST(SchedulerAdaptive, shouldMeetTheBalancedGoalOnAFastTraceWhileBatching) {
  ModelScheduler scheduler(adaptive_policy(Target::kBalanced), {});
  const std::vector<SimulatedRequest> trace = periodic_trace(2000, 100 * kUs);

  const SimulationResult result = simulate(scheduler, trace, exec_ns);

  EXPECT_EQ(result.complete_ns_by_ticket.size(), trace.size());
  EXPECT_LE(max_latency_ns(result, trace), kP99GoalNs);
  EXPECT_GT(mean(result.batch_rows), 8.0);
}

TEST(SchedulerAdaptive, shouldRunEachRequestAtOnceOnASlowBalancedTrace) {
  ModelScheduler scheduler(adaptive_policy(Target::kBalanced), {});
  const std::vector<SimulatedRequest> trace = periodic_trace(200, 5 * kMs);

  const SimulationResult result = simulate(scheduler, trace, exec_ns);

  EXPECT_THAT(result.batch_rows, Each(1u));
  EXPECT_EQ(max_latency_ns(result, trace), exec_ns(1));
}

TEST(SchedulerAdaptive, shouldFillTowardMaxBatchForThroughputWhenArrivalsBeatTheFixedCost) {
  ModelScheduler scheduler(adaptive_policy(Target::kThroughput), {});
  const std::vector<SimulatedRequest> trace = periodic_trace(4000, 50 * kUs);

  const SimulationResult result = simulate(scheduler, trace, exec_ns);

  EXPECT_EQ(scheduler.adaptive_tuning(0).target_rows, kMaxBatch);
  EXPECT_GT(mean(result.batch_rows), 24.0);
}

TEST(SchedulerAdaptive, shouldRunAtOnceForThroughputWhenArrivalsAreSlowerThanTheFixedCost) {
  ModelScheduler scheduler(adaptive_policy(Target::kThroughput), {});
  const std::vector<SimulatedRequest> trace = periodic_trace(200, 2 * kMs);

  const SimulationResult result = simulate(scheduler, trace, exec_ns);

  EXPECT_THAT(result.batch_rows, Each(1u));
  EXPECT_EQ(max_latency_ns(result, trace), exec_ns(1));
}

TEST(SchedulerAdaptive, shouldIgnorePreferredSizes) {
  Policy policy = adaptive_policy(Target::kLatency);
  policy.preferred_batch_sizes = {2};
  ModelScheduler scheduler(policy, {});
  for (uint64_t ticket = 0; ticket < 5; ++ticket)
    scheduler.admit(make_request(ticket, 1, Priority::kNormal, 0), 0);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 5u);
}

}  // namespace
}  // namespace coproc::daemon::sched

namespace coproc::daemon::sched {
namespace {

// Closed-loop clients: once every client waits on what is queued, nothing
// more arrives, and waiting max_wait for a fill that cannot come would only
// add latency. The batch goes kStallIntervals mean intervals after the last
// arrival.
TEST(SchedulerAdaptive, shouldDispatchWhenArrivalsPauseInsteadOfWaitingToFill) {
  ModelScheduler scheduler(adaptive_policy(Target::kThroughput), nullptr);
  feed_cost_samples(scheduler);
  constexpr uint64_t kInterval = 10 * kUs;
  const uint64_t t0 = feed_arrivals(scheduler, 16, kInterval) + kInterval;
  for (uint64_t i = 0; i < 4; ++i) {
    const uint64_t at = t0 + i * kInterval;
    ASSERT_EQ(scheduler.admit(make_request(100 + i, 1, Priority::kNormal, at), at),
              Admit::kAccepted);
  }
  const uint64_t last = t0 + 3 * kInterval;
  EXPECT_FALSE(scheduler.next_batch(last + kInterval).has_value())
      << "still arriving: keep filling";
  const uint64_t stall = scheduler.next_event_ns(last + kInterval);
  EXPECT_LE(stall, last + static_cast<uint64_t>(kStallIntervals * kInterval) + kInterval);
  EXPECT_LT(stall, last + 2 * kMs) << "not the full max_wait";
  auto batch = scheduler.next_batch(stall);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->rows, 4u);
}

}  // namespace
}  // namespace coproc::daemon::sched
