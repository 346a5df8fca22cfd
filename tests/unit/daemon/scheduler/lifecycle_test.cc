// How a request leaves the queue other than in a batch (deadlines, cancel),
// admission, next_event_ns, policy changes and the counters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduler/model_scheduler.h"
#include "scheduler_test_support.h"

namespace coproc::daemon::sched {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace test_support;

Request with_deadline(Request r, uint64_t deadline_ns) {
  r.deadline_ns = deadline_ns;
  return r;
}

TEST(SchedulerDeadlines, shouldExpireRequestWhoseDeadlinePassed) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(with_deadline(make_request(1, 1, Priority::kNormal, 0), 5 * kMs), 0);
  scheduler.admit(with_deadline(make_request(2, 1, Priority::kNormal, 0), 9 * kMs), 0);
  std::vector<uint64_t> expired;

  scheduler.expire(5 * kMs, &expired);

  EXPECT_THAT(expired, ElementsAre(1));
  EXPECT_EQ(scheduler.queued(), 1u);
}

TEST(SchedulerDeadlines, shouldGiveRequestWithoutDeadlineArrivalPlusDefaultTimeout) {
  Policy policy = dynamic_policy(8);
  policy.default_timeout_ns = 3 * kMs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, kMs), 2 * kMs);
  std::vector<uint64_t> expired;

  scheduler.expire(4 * kMs - 1, &expired);
  ASSERT_THAT(expired, IsEmpty());
  scheduler.expire(4 * kMs, &expired);

  EXPECT_THAT(expired, ElementsAre(1));
}

TEST(SchedulerDeadlines, shouldKeepTheRequestsOwnDeadlineOverTheDefaultTimeout) {
  Policy policy = dynamic_policy(8);
  policy.default_timeout_ns = kMs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(with_deadline(make_request(1, 1, Priority::kNormal, 0), 10 * kMs), 0);
  std::vector<uint64_t> expired;

  scheduler.expire(5 * kMs, &expired);

  EXPECT_THAT(expired, IsEmpty());
}

TEST(SchedulerDeadlines, shouldNeverPutARequestPastItsDeadlineInABatch) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(with_deadline(make_request(1, 1, Priority::kCritical, 0), kMs), 0);
  scheduler.admit(make_request(2, 1, Priority::kNormal, 0), 0);

  const auto batch = scheduler.next_batch(kMs);
  std::vector<uint64_t> expired;
  scheduler.expire(kMs, &expired);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(2));
  EXPECT_THAT(expired, ElementsAre(1));
}

TEST(SchedulerDeadlines, shouldAcceptARequestAlreadyPastItsDeadlineAndExpireItNext) {
  ModelScheduler scheduler(dynamic_policy(8), {});

  const Admit admitted =
      scheduler.admit(with_deadline(make_request(1, 1, Priority::kNormal, kMs), kMs), 2 * kMs);

  EXPECT_EQ(admitted, Admit::kAccepted);
  EXPECT_EQ(scheduler.next_event_ns(2 * kMs), 2 * kMs);
  EXPECT_FALSE(scheduler.next_batch(2 * kMs));
}

TEST(SchedulerNextEvent, shouldBeNeverWhenNothingIsQueued) {
  const ModelScheduler scheduler(dynamic_policy(8), {});

  EXPECT_EQ(scheduler.next_event_ns(0), kNever);
}

TEST(SchedulerNextEvent, shouldBeTheEarliestDeadlineWhileABatchRuns) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(with_deadline(make_request(1, 1, Priority::kNormal, 0), 7 * kMs), 0);
  scheduler.admit(with_deadline(make_request(2, 1, Priority::kNormal, 0), 4 * kMs), 0);

  // min_batch 1: the batch is ready, which is no event; the deadlines are.
  EXPECT_EQ(scheduler.next_event_ns(kMs), 4 * kMs);
}

TEST(SchedulerNextEvent, shouldBeNowWhenAnExpiryIsDue) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(with_deadline(make_request(1, 1, Priority::kNormal, 0), 4 * kMs), 0);

  EXPECT_EQ(scheduler.next_event_ns(5 * kMs), 5 * kMs);
}

TEST(SchedulerNextEvent, shouldBeTheMaxWaitRunningOutForABatchStillFilling) {
  Policy policy = dynamic_policy(8);
  policy.min_batch = 4;
  policy.max_wait_ns = 2 * kMs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, kMs), kMs);
  scheduler.admit(with_deadline(make_request(2, 1, Priority::kNormal, kMs), 10 * kMs), kMs);

  EXPECT_EQ(scheduler.next_event_ns(kMs), 3 * kMs);
}

TEST(SchedulerNextEvent, shouldBeTheNextAgingStep) {
  Policy policy = dynamic_policy(8);
  policy.aging_ns = 10 * kMs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kLow, kMs), kMs);

  EXPECT_EQ(scheduler.next_event_ns(12 * kMs), 21 * kMs);
}

TEST(SchedulerNextEvent, shouldWakeWhenAnAgingStepMakesAnotherBucketHeadAndReady) {
  Policy policy = dynamic_policy(8);
  policy.min_batch = 2;
  policy.max_wait_ns = 100 * kMs;
  policy.aging_ns = 10 * kMs;
  policy.length_buckets = {8, 16};
  ModelScheduler scheduler(policy, {});
  Request lone_high = make_request(1, 2, Priority::kHigh, 0);
  lone_high.length = 4;
  scheduler.admit(lone_high, 0);
  for (uint64_t ticket = 2; ticket <= 3; ++ticket) {
    Request pair_normal = make_request(ticket, 1, Priority::kNormal, 0);
    pair_normal.length = 12;
    scheduler.admit(pair_normal, 0);
  }
  ASSERT_FALSE(scheduler.next_batch(0));  // the head's bucket holds 1 row < min_batch

  const uint64_t event_ns = scheduler.next_event_ns(0);
  const auto batch = scheduler.next_batch(event_ns);

  // Aged to kHigh, client 1's pair takes the first turn at that level and
  // fills min_batch in its own bucket.
  EXPECT_EQ(event_ns, 10 * kMs);
  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(2, 3));
}

TEST(SchedulerCancel, shouldRemoveACancelledRequestSoItNeverRuns) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, 0), 0);
  scheduler.admit(make_request(2, 1, Priority::kNormal, 0), 0);

  const bool cancelled = scheduler.cancel(1, 1);
  const auto batch = scheduler.next_batch(0);

  EXPECT_TRUE(cancelled);
  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(2));
}

TEST(SchedulerCancel, shouldRefuseToCancelAnotherClientsRequest) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, 0), 0);

  EXPECT_FALSE(scheduler.cancel(2, 1));
  EXPECT_EQ(scheduler.queued(), 1u);
}

TEST(SchedulerCancel, shouldReturnFalseForARequestAlreadyDispatched) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, 0), 0);
  ASSERT_TRUE(scheduler.next_batch(0));

  EXPECT_FALSE(scheduler.cancel(1, 1));
  EXPECT_EQ(scheduler.stats().cancelled, 0u);
}

TEST(SchedulerAdmission, shouldRefuseAtOnceWhenTheQueueIsFull) {
  Policy policy = dynamic_policy(8);
  policy.queue_limit = 2;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, 0), 0);
  scheduler.admit(make_request(2, 1, Priority::kNormal, 0), 0);

  const Admit third = scheduler.admit(make_request(3, 2, Priority::kCritical, 0), 0);

  EXPECT_EQ(third, Admit::kQueueFull);
  EXPECT_EQ(scheduler.queued(), 2u);
  EXPECT_EQ(scheduler.stats().rejected_queue_full, 1u);
}

TEST(SchedulerAdmission, shouldAcceptAgainOnceTheQueueDrains) {
  Policy policy = dynamic_policy(8);
  policy.queue_limit = 1;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kNormal, 0), 0);
  ASSERT_EQ(scheduler.admit(make_request(2, 1, Priority::kNormal, 0), 0), Admit::kQueueFull);
  ASSERT_TRUE(scheduler.next_batch(0));

  EXPECT_EQ(scheduler.admit(make_request(2, 1, Priority::kNormal, 0), 0), Admit::kAccepted);
}

TEST(SchedulerPolicyChange, shouldKeepQueuedRequestsAndApplyTheNewPolicyToTheNextBatch) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  for (uint64_t ticket = 1; ticket <= 4; ++ticket)
    scheduler.admit(make_request(ticket, 1, Priority::kNormal, 0), 0);

  scheduler.set_policy(dynamic_policy(2));
  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(1, 2));
  EXPECT_EQ(scheduler.queued(), 2u);
}

TEST(SchedulerPolicyChange, shouldKeepQueuedRequestsWhenTheQueueLimitDropsBelowThem) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  for (uint64_t ticket = 1; ticket <= 4; ++ticket)
    scheduler.admit(make_request(ticket, 1, Priority::kNormal, 0), 0);
  Policy smaller = dynamic_policy(8);
  smaller.queue_limit = 2;

  scheduler.set_policy(smaller);

  EXPECT_EQ(scheduler.queued(), 4u);
  EXPECT_EQ(scheduler.admit(make_request(5, 1, Priority::kNormal, 0), 0), Admit::kQueueFull);
}

TEST(SchedulerPolicyChange, shouldRebucketQueuedRequestsUnderNewLengthBuckets) {
  Policy policy = dynamic_policy(8);
  policy.length_buckets = {8, 16};
  ModelScheduler scheduler(policy, {});
  for (const int64_t length : {4, 12}) {
    Request r = make_request(static_cast<uint64_t>(length), 1, Priority::kNormal, 0);
    r.length = length;
    scheduler.admit(r, 0);
  }
  policy.length_buckets = {32};

  scheduler.set_policy(policy);
  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(4, 12));
  EXPECT_EQ(batch->padded_length, 32);
}

TEST(SchedulerStats, shouldCountEveryWayARequestEntersOrLeaves) {
  Policy policy = dynamic_policy(2);
  policy.queue_limit = 4;
  ModelScheduler scheduler(policy, {});
  for (uint64_t ticket = 1; ticket <= 5; ++ticket)
    scheduler.admit(make_request(ticket, 1, Priority::kNormal, 0), 0);
  scheduler.cancel(1, 4);
  std::vector<uint64_t> expired;
  scheduler.admit(with_deadline(make_request(6, 1, Priority::kNormal, 0), kMs), 0);

  scheduler.expire(kMs, &expired);
  const std::vector<Batch> batches = drain_ready(scheduler, kMs);

  const Stats& stats = scheduler.stats();
  EXPECT_EQ(stats.admitted, 5u);
  EXPECT_EQ(stats.rejected_queue_full, 1u);
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.expired, 1u);
  EXPECT_EQ(stats.batches, 2u);
  EXPECT_EQ(stats.batched_requests, 3u);
  EXPECT_EQ(stats.batched_rows, 3u);
  EXPECT_EQ(stats.batch_rows_histogram[0], 1u);  // 1 row
  EXPECT_EQ(stats.batch_rows_histogram[1], 1u);  // 2 rows
  EXPECT_EQ(stats.admitted,
            stats.batched_requests + stats.expired + stats.cancelled + scheduler.queued());
}

TEST(SchedulerStats, shouldPutBatchSizesInLog2HistogramBuckets) {
  EXPECT_EQ(batch_rows_histogram_bucket(1), 0u);
  EXPECT_EQ(batch_rows_histogram_bucket(3), 1u);
  EXPECT_EQ(batch_rows_histogram_bucket(32), 5u);
  EXPECT_EQ(batch_rows_histogram_bucket(UINT32_MAX), kBatchRowsHistogramBuckets - 1);
}

TEST(SchedulerStats, shouldReportQueueDepthByAdmittedPriority) {
  Policy policy = dynamic_policy(8);
  policy.aging_ns = kMs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kLow, 0), 0);
  scheduler.admit(make_request(2, 1, Priority::kLow, 0), 0);
  scheduler.admit(make_request(3, 1, Priority::kCritical, 0), 0);

  const auto depth = scheduler.queued_by_priority();

  EXPECT_THAT(depth, ElementsAre(1, 0, 0, 2));
}

TEST(SchedulerPolicyDeathTest, shouldAbortOnAPolicyWithMinBatchAboveMaxBatch) {
  Policy policy = dynamic_policy(4);
  policy.min_batch = 5;

  EXPECT_DEATH(ModelScheduler(policy, {}), "invariant violated");
}

TEST(SchedulerPolicyDeathTest, shouldAbortOnAMemoryCapWithoutAnEstimator) {
  Policy policy = dynamic_policy(4);
  policy.memory_limit_bytes = 1024;

  EXPECT_DEATH(ModelScheduler(policy, {}), "invariant violated");
}

}  // namespace
}  // namespace coproc::daemon::sched
