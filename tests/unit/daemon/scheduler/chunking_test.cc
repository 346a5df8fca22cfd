// Requests that do not fit a batch by themselves, with Policy::chunk_requests:
// they run a chunk at a time, more urgent work runs between two chunks, a
// chunk fills the room small requests leave, and expiry and cancellation take
// the rows not yet dispatched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduler/model_scheduler.h"
#include "scheduler_test_support.h"

namespace coproc::daemon::sched {
namespace {

using ::testing::ElementsAre;
using namespace test_support;

Policy chunking_policy(uint32_t max_batch) {
  Policy policy = dynamic_policy(max_batch);
  policy.chunk_requests = true;
  return policy;
}

void admit(ModelScheduler& scheduler, uint64_t ticket, uint32_t client, Priority priority,
           uint32_t rows, uint64_t now_ns = 0) {
  ASSERT_EQ(scheduler.admit(make_request(ticket, client, priority, now_ns, rows), now_ns),
            Admit::kAccepted);
}

TEST(SchedulerChunks, shouldRunARequestOverMaxBatchInChunksOfMaxBatchRows) {
  ModelScheduler scheduler(chunking_policy(32), {});
  admit(scheduler, 1, 1, Priority::kLow, 100);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 4u);
  const uint32_t first_rows[] = {0, 32, 64, 96};
  const uint32_t rows[] = {32, 32, 32, 4};
  for (std::size_t b = 0; b < batches.size(); ++b) {
    SCOPED_TRACE(b);
    EXPECT_THAT(batches[b].tickets, ElementsAre(1));
    ASSERT_EQ(batches[b].slices.size(), 1u);
    EXPECT_EQ(batches[b].slices[0].first_row, first_rows[b]);
    EXPECT_EQ(batches[b].slices[0].rows, rows[b]);
    EXPECT_EQ(batches[b].rows, rows[b]);
    EXPECT_EQ(batches[b].slices[0].last, b == 3);
  }
  EXPECT_EQ(scheduler.queued(), 0u);
  EXPECT_EQ(scheduler.stats().batched_requests, 1u);
  EXPECT_EQ(scheduler.stats().chunks, 4u);
}

TEST(SchedulerChunks, shouldKeepAChunkedRequestQueuedUntilItsLastChunk) {
  ModelScheduler scheduler(chunking_policy(8), {});
  admit(scheduler, 1, 1, Priority::kLow, 20);

  ASSERT_TRUE(scheduler.next_batch(0));

  EXPECT_EQ(scheduler.queued(), 1u);
  EXPECT_EQ(scheduler.queued_by_priority()[static_cast<std::size_t>(Priority::kLow)], 1u);
  EXPECT_EQ(scheduler.stats().batched_requests, 0u);
}

TEST(SchedulerChunks, shouldRunACriticalRequestBetweenTwoChunks) {
  ModelScheduler scheduler(chunking_policy(32), {});
  admit(scheduler, 1, 1, Priority::kLow, 30'000);
  const auto first_chunk = scheduler.next_batch(0);
  ASSERT_TRUE(first_chunk);
  admit(scheduler, 2, 2, Priority::kCritical, 1, 10 * kUs);

  const auto next = scheduler.next_batch(10 * kUs);

  ASSERT_TRUE(next);
  // The critical request runs next, alone: low rows filling its batch would make it wait for
  // a whole chunk's execution. The big request goes on after it.
  EXPECT_THAT(next->tickets, ElementsAre(2));
  EXPECT_EQ(next->rows, 1u);
  const auto after = scheduler.next_batch(10 * kUs);
  ASSERT_TRUE(after);
  EXPECT_THAT(after->tickets, ElementsAre(1));
  EXPECT_EQ(after->slices[0].first_row, 32u);
  EXPECT_EQ(after->rows, 32u);
}

TEST(SchedulerChunks, shouldFillTheRoomSmallRequestsLeaveWithAChunk) {
  ModelScheduler scheduler(chunking_policy(32), {});
  admit(scheduler, 1, 1, Priority::kNormal, 3);
  admit(scheduler, 2, 2, Priority::kNormal, 100);
  admit(scheduler, 3, 3, Priority::kNormal, 2);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(1, 2));
  EXPECT_EQ(batch->slices[1].rows, 29u);
  EXPECT_FALSE(batch->slices[1].last);
  EXPECT_EQ(batch->rows, 32u);
}

TEST(SchedulerChunks, shouldNotSplitARequestThatFitsABatchByItself) {
  ModelScheduler scheduler(chunking_policy(32), {});
  admit(scheduler, 1, 1, Priority::kNormal, 20);
  admit(scheduler, 2, 2, Priority::kNormal, 20);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0].tickets, ElementsAre(1));
  EXPECT_THAT(batches[1].tickets, ElementsAre(2));
  EXPECT_EQ(batches[1].slices[0].rows, 20u);
  EXPECT_TRUE(batches[1].slices[0].last);
}

TEST(SchedulerChunks, shouldRunARequestOverMaxBatchWholeWithoutChunking) {
  ModelScheduler scheduler(dynamic_policy(32), {});
  admit(scheduler, 1, 1, Priority::kNormal, 100);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->rows, 100u);
  EXPECT_EQ(batch->slices[0].rows, 100u);
  EXPECT_TRUE(batch->slices[0].last);
}

TEST(SchedulerChunks, shouldCutChunksByTheMemoryCap) {
  Policy policy = chunking_policy(32);
  policy.memory_limit_bytes = 1000;
  ModelScheduler scheduler(policy, [](uint32_t rows, int64_t) { return uint64_t{rows} * 100; });
  admit(scheduler, 1, 1, Priority::kNormal, 25);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].rows, 10u);
  EXPECT_EQ(batches[0].estimated_bytes, 1000u);
  EXPECT_EQ(batches[1].rows, 10u);
  EXPECT_EQ(batches[2].rows, 5u);
  EXPECT_TRUE(batches[2].slices[0].last);
}

TEST(SchedulerChunks, shouldRunOneRowAtATimeWhenOneRowIsOverTheMemoryCap) {
  Policy policy = chunking_policy(32);
  policy.memory_limit_bytes = 50;
  ModelScheduler scheduler(policy, [](uint32_t rows, int64_t) { return uint64_t{rows} * 100; });
  admit(scheduler, 1, 1, Priority::kNormal, 3);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 3u);
  for (const Batch& b : batches) EXPECT_EQ(b.rows, 1u);
}

TEST(SchedulerChunks, shouldCutAChunkToTheLargestPreferredSize) {
  Policy policy = chunking_policy(20);
  policy.preferred_batch_sizes = {8, 16};
  ModelScheduler scheduler(policy, {});
  admit(scheduler, 1, 1, Priority::kNormal, 2);
  admit(scheduler, 2, 2, Priority::kNormal, 40);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 3u);
  EXPECT_THAT(batches[0].tickets, ElementsAre(1, 2));
  EXPECT_EQ(batches[0].rows, 16u);
  EXPECT_EQ(batches[0].slices[1].rows, 14u);
  EXPECT_EQ(batches[1].rows, 16u);
  EXPECT_EQ(batches[1].slices[0].first_row, 14u);
  EXPECT_EQ(batches[2].rows, 10u);  // the rest fits by itself: whole, as any first request
  EXPECT_TRUE(batches[2].slices[0].last);
}

TEST(SchedulerChunks, shouldExpireAChunkedRequestBetweenChunks) {
  ModelScheduler scheduler(chunking_policy(8), {});
  Request r = make_request(1, 1, Priority::kLow, 0, 100);
  r.deadline_ns = 5 * kMs;
  scheduler.admit(r, 0);
  ASSERT_TRUE(scheduler.next_batch(0));
  EXPECT_EQ(scheduler.next_event_ns(kMs), 5 * kMs) << "its deadline is still an event";

  std::vector<uint64_t> expired;
  scheduler.expire(5 * kMs, &expired);

  EXPECT_THAT(expired, ElementsAre(1));
  EXPECT_EQ(scheduler.queued(), 0u);
  EXPECT_FALSE(scheduler.next_batch(5 * kMs));
  const Stats& stats = scheduler.stats();
  EXPECT_EQ(stats.admitted, stats.batched_requests + stats.expired + stats.cancelled);
}

TEST(SchedulerChunks, shouldCancelAChunkedRequestBetweenChunks) {
  ModelScheduler scheduler(chunking_policy(8), {});
  admit(scheduler, 1, 1, Priority::kLow, 100);
  ASSERT_TRUE(scheduler.next_batch(0));

  EXPECT_FALSE(scheduler.cancel(2, 1)) << "another client's";
  EXPECT_TRUE(scheduler.cancel(1, 1));

  EXPECT_EQ(scheduler.queued(), 0u);
  EXPECT_FALSE(scheduler.next_batch(0));
  EXPECT_EQ(scheduler.stats().cancelled, 1u);
}

TEST(SchedulerChunks, shouldAlternateTheChunksOfTwoClientsBigRequestsAtOneLevel) {
  ModelScheduler scheduler(chunking_policy(8), {});
  admit(scheduler, 1, 1, Priority::kLow, 24);
  admit(scheduler, 2, 2, Priority::kLow, 24);

  const std::vector<Batch> batches = drain_ready(scheduler, 0);

  ASSERT_EQ(batches.size(), 6u);
  for (std::size_t b = 0; b < batches.size(); ++b) {
    EXPECT_THAT(batches[b].tickets, ElementsAre(b % 2 == 0 ? 1 : 2)) << "batch " << b;
  }
}

TEST(SchedulerChunks, shouldBoundACriticalRequestsWaitByOneChunkUnderABigLowRequest) {
  // A 30,000-row low request at 20 us a row (a 32-row chunk: 640 us); critical requests every
  // 7 ms. Whole, the big request would hold the device for 600 ms.
  ModelScheduler scheduler(chunking_policy(32), {});
  std::vector<SimulatedRequest> trace = {
      {.arrival_ns = 0, .client = 1, .priority = Priority::kLow, .rows = 30'000}};
  for (uint64_t t = 1; t <= 50; ++t) {
    trace.push_back(
        {.arrival_ns = t * 7 * kMs + 123 * kUs, .client = 2, .priority = Priority::kCritical});
  }
  const auto exec_ns_of = [](uint32_t rows) { return uint64_t{rows} * 20 * kUs; };

  const SimulationResult result = simulate(scheduler, trace, exec_ns_of);

  const uint64_t chunk_ns = exec_ns_of(32);
  for (uint64_t ticket = 1; ticket < trace.size(); ++ticket) {
    const uint64_t waited_ns = result.dispatch_ns_by_ticket.at(ticket) - trace[ticket].arrival_ns;
    EXPECT_LE(waited_ns, chunk_ns) << "critical request " << ticket;
  }
  EXPECT_EQ(result.complete_ns_by_ticket.size(), trace.size());
}

}  // namespace
}  // namespace coproc::daemon::sched
