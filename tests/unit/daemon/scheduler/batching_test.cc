// Batch formation in kFixed and kDynamic: when a batch goes, how large it is
// (max_batch, min_batch, max_wait, preferred sizes), length buckets and the
// memory cap.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduler/model_scheduler.h"
#include "scheduler_test_support.h"

namespace coproc::daemon::sched {
namespace {

using ::testing::ElementsAre;
using namespace test_support;

constexpr uint64_t kMaxWaitNs = 2 * kMs;

Policy fixed_policy(uint32_t max_batch) {
  Policy policy = dynamic_policy(max_batch);
  policy.mode = Mode::kFixed;
  policy.max_wait_ns = kMaxWaitNs;
  return policy;
}

void admit_singles(ModelScheduler& scheduler, uint64_t first_ticket, uint64_t count,
                   uint64_t now_ns) {
  for (uint64_t ticket = first_ticket; ticket < first_ticket + count; ++ticket) {
    scheduler.admit(make_request(ticket, 1, Priority::kNormal, now_ns), now_ns);
  }
}

void admit_rows(ModelScheduler& scheduler, uint64_t ticket, uint32_t rows) {
  scheduler.admit(make_request(ticket, 1, Priority::kNormal, 0, rows), 0);
}

void admit_length(ModelScheduler& scheduler, uint64_t ticket, int64_t length, uint32_t rows = 1) {
  Request r = make_request(ticket, static_cast<uint32_t>(ticket), Priority::kNormal, 0, rows);
  r.length = length;
  scheduler.admit(r, 0);
}

TEST(SchedulerFixedMode, shouldWaitForAFullBatch) {
  ModelScheduler scheduler(fixed_policy(4), {});
  admit_singles(scheduler, 1, 3, 0);
  ASSERT_FALSE(scheduler.next_batch(kMaxWaitNs - 1));
  admit_singles(scheduler, 4, 1, kMaxWaitNs - 1);

  const auto batch = scheduler.next_batch(kMaxWaitNs - 1);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(1, 2, 3, 4));
}

TEST(SchedulerFixedMode, shouldTakeWhatIsQueuedOnceTheOldestHasWaitedMaxWait) {
  ModelScheduler scheduler(fixed_policy(4), {});
  admit_singles(scheduler, 1, 3, 0);

  const auto batch = scheduler.next_batch(kMaxWaitNs);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 3u);
}

TEST(SchedulerDynamicMode, shouldDispatchAtOnceWithMinBatchRowsQueued) {
  Policy policy = dynamic_policy(8);
  policy.min_batch = 2;
  ModelScheduler scheduler(policy, {});
  admit_singles(scheduler, 1, 2, 0);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 2u);
}

TEST(SchedulerDynamicMode, shouldWaitBelowMinBatchUntilTheOldestHasWaitedMaxWait) {
  Policy policy = dynamic_policy(8);
  policy.min_batch = 3;
  policy.max_wait_ns = kMaxWaitNs;
  ModelScheduler scheduler(policy, {});
  admit_singles(scheduler, 1, 1, 0);
  admit_singles(scheduler, 2, 1, kMs);

  const auto too_early = scheduler.next_batch(kMaxWaitNs - 1);
  const auto on_time = scheduler.next_batch(kMaxWaitNs);

  EXPECT_FALSE(too_early);
  ASSERT_TRUE(on_time);
  EXPECT_THAT(on_time->tickets, ElementsAre(1, 2));
}

TEST(SchedulerDynamicMode, shouldCountRowsNotRequestsTowardMinBatch) {
  Policy policy = dynamic_policy(8);
  policy.min_batch = 4;
  ModelScheduler scheduler(policy, {});
  admit_rows(scheduler, 1, 4);

  EXPECT_TRUE(scheduler.next_batch(0));
}

TEST(SchedulerBatchSize, shouldStopAtTheFirstRequestThatWouldPassMaxBatchRows) {
  ModelScheduler scheduler(dynamic_policy(4), {});
  admit_rows(scheduler, 1, 3);
  admit_rows(scheduler, 2, 2);
  admit_rows(scheduler, 3, 1);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0].tickets, ElementsAre(1));  // ticket 3 does not jump ahead of 2
  EXPECT_THAT(batches[1].tickets, ElementsAre(2, 3));
}

TEST(SchedulerBatchSize, shouldRunARequestLargerThanMaxBatchAlone) {
  ModelScheduler scheduler(dynamic_policy(4), {});
  admit_rows(scheduler, 1, 10);
  admit_rows(scheduler, 2, 1);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0].tickets, ElementsAre(1));
  EXPECT_EQ(batches[0].rows, 10u);
  EXPECT_THAT(batches[1].tickets, ElementsAre(2));
}

TEST(SchedulerPreferredSizes, shouldCutToTheLargestPreferredSizeAtMostTheRowsQueued) {
  Policy policy = dynamic_policy(8);
  policy.preferred_batch_sizes = {2, 4, 8};
  ModelScheduler scheduler(policy, {});
  admit_singles(scheduler, 1, 7, 0);

  std::vector<uint32_t> rows;
  for (const Batch& batch : drain_ready(scheduler, 0)) rows.push_back(batch.rows);

  EXPECT_THAT(rows, ElementsAre(4, 2, 1));  // 1 row is below the smallest size: not cut
}

TEST(SchedulerPreferredSizes, shouldRoundDownToWholeRequests) {
  Policy policy = dynamic_policy(8);
  policy.preferred_batch_sizes = {4};
  ModelScheduler scheduler(policy, {});
  admit_rows(scheduler, 1, 3);
  admit_rows(scheduler, 2, 3);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(1));
  EXPECT_EQ(batch->rows, 3u);
}

TEST(SchedulerPreferredSizes, shouldKeepAFirstRequestLargerThanThePreferredSize) {
  Policy policy = dynamic_policy(8);
  policy.preferred_batch_sizes = {2};
  ModelScheduler scheduler(policy, {});
  admit_rows(scheduler, 1, 3);
  admit_rows(scheduler, 2, 1);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(1));
}

TEST(SchedulerPreferredSizes, shouldApplyInFixedModeAfterTheWait) {
  Policy policy = fixed_policy(8);
  policy.preferred_batch_sizes = {4};
  ModelScheduler scheduler(policy, {});
  admit_singles(scheduler, 1, 6, 0);

  const auto batch = scheduler.next_batch(kMaxWaitNs);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 4u);
}

TEST(SchedulerLengthBuckets, shouldBatchOnlyTheHeadsBucketPaddedToItsBound) {
  Policy policy = dynamic_policy(8);
  policy.length_buckets = {8, 16, 32};
  ModelScheduler scheduler(policy, {});
  admit_length(scheduler, 1, 5);
  admit_length(scheduler, 2, 20);
  admit_length(scheduler, 3, 7);
  admit_length(scheduler, 4, 30);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0].tickets, ElementsAre(1, 3));
  EXPECT_EQ(batches[0].padded_length, 8);
  EXPECT_THAT(batches[1].tickets, ElementsAre(2, 4));
  EXPECT_EQ(batches[1].padded_length, 32);
}

TEST(SchedulerLengthBuckets, shouldCountPaddingWastePerRow) {
  Policy policy = dynamic_policy(8);
  policy.length_buckets = {8, 16};
  ModelScheduler scheduler(policy, {});
  admit_length(scheduler, 1, 5, /*rows=*/2);  // 2 * (8 - 5) = 6 wasted
  admit_length(scheduler, 2, 8);              // exact fit
  admit_length(scheduler, 3, 9);              // 16 - 9 = 7 wasted, own batch

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].padded_elements_wasted, 6u);
  EXPECT_EQ(batches[1].padded_elements_wasted, 7u);
  EXPECT_EQ(scheduler.stats().padded_elements_wasted, 13u);
  EXPECT_EQ(scheduler.stats().padded_elements_total, 3u * 8 + 1u * 16);
}

TEST(SchedulerLengthBuckets, shouldPutALengthAboveEveryBoundInABucketOfItsOwnLength) {
  Policy policy = dynamic_policy(8);
  policy.length_buckets = {8};
  ModelScheduler scheduler(policy, {});
  admit_length(scheduler, 1, 20);
  admit_length(scheduler, 2, 30);
  admit_length(scheduler, 3, 20);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0].tickets, ElementsAre(1, 3));
  EXPECT_EQ(batches[0].padded_length, 20);
  EXPECT_EQ(batches[0].padded_elements_wasted, 0u);
  EXPECT_EQ(batches[1].padded_length, 30);
}

TEST(SchedulerLengthBuckets, shouldNotPadWithoutBuckets) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  admit_length(scheduler, 1, 20);
  admit_length(scheduler, 2, 30);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 2u);
  EXPECT_EQ(batch->padded_length, 0);
  EXPECT_EQ(batch->padded_elements_wasted, 0u);
}

// 100 bytes per row-element; a cap of 350 bytes fits 3 rows of an unpadded model.
constexpr uint64_t kBytesPerElement = 100;
constexpr uint64_t kMemoryLimitBytes = 350;
uint64_t linear_memory(uint32_t rows, int64_t padded_length) {
  return rows * kBytesPerElement * static_cast<uint64_t>(std::max<int64_t>(1, padded_length));
}

TEST(SchedulerMemoryCap, shouldCapABatchByTheMemoryEstimate) {
  Policy policy = dynamic_policy(8);
  policy.memory_limit_bytes = kMemoryLimitBytes;
  ModelScheduler scheduler(policy, linear_memory);
  admit_singles(scheduler, 1, 5, 0);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].rows, 3u);
  EXPECT_EQ(batches[0].estimated_bytes, 300u);
  EXPECT_EQ(batches[1].rows, 2u);
}

TEST(SchedulerMemoryCap, shouldRunARequestOverTheMemoryLimitAlone) {
  Policy policy = dynamic_policy(8);
  policy.memory_limit_bytes = kMemoryLimitBytes;
  ModelScheduler scheduler(policy, linear_memory);
  admit_rows(scheduler, 1, 5);
  admit_rows(scheduler, 2, 1);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(1));
  EXPECT_EQ(batch->estimated_bytes, 500u);
}

TEST(SchedulerMemoryCap, shouldCountPaddedLengthInTheEstimate) {
  Policy policy = dynamic_policy(8);
  policy.memory_limit_bytes = kMemoryLimitBytes * 2;  // 7 elements
  policy.length_buckets = {2, 4};
  ModelScheduler scheduler(policy, linear_memory);
  for (uint64_t ticket = 1; ticket <= 3; ++ticket) admit_length(scheduler, ticket, 3);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 1u);  // 2 rows padded to 4 would be 800 bytes > 700
}

TEST(SchedulerMemoryCap, shouldDispatchABatchTheCapFillsWithoutWaitingInFixedMode) {
  Policy policy = fixed_policy(8);
  policy.memory_limit_bytes = kMemoryLimitBytes;
  ModelScheduler scheduler(policy, linear_memory);
  admit_singles(scheduler, 1, 3, 0);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 3u);
}

}  // namespace
}  // namespace coproc::daemon::sched
