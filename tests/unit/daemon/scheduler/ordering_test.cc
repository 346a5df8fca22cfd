// Order of dispatch: priority levels, round-robin between clients within a
// level, FIFO within a client, and aging as the starvation guard.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduler/model_scheduler.h"
#include "scheduler/request_queue.h"
#include "scheduler_test_support.h"

namespace coproc::daemon::sched {
namespace {

using ::testing::ElementsAre;
using namespace test_support;

constexpr uint64_t kAgingNs = 10 * kMs;

TEST(SchedulerOrdering, shouldDispatchHigherPriorityFirst) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  scheduler.admit(make_request(1, 1, Priority::kLow, 0), 0);
  scheduler.admit(make_request(2, 1, Priority::kNormal, 0), 0);
  scheduler.admit(make_request(3, 1, Priority::kCritical, 0), 0);
  scheduler.admit(make_request(4, 1, Priority::kHigh, 0), 0);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(3, 4, 2, 1));
}

TEST(SchedulerOrdering, shouldServeClientsRoundRobinAndEachClientFifoWithinALevel) {
  ModelScheduler scheduler(dynamic_policy(8), {});
  for (const uint64_t ticket : {11, 12, 13})
    scheduler.admit(make_request(ticket, 1, Priority::kNormal, 0), 0);
  for (const uint64_t ticket : {21, 22})
    scheduler.admit(make_request(ticket, 2, Priority::kNormal, 0), 0);
  scheduler.admit(make_request(31, 3, Priority::kNormal, 0), 0);

  const auto batch = scheduler.next_batch(0);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(11, 21, 31, 12, 22, 13));
}

TEST(SchedulerOrdering, shouldContinueTheRotationAcrossBatches) {
  ModelScheduler scheduler(dynamic_policy(1), {});
  for (uint32_t client = 1; client <= 3; ++client) {
    for (uint64_t i = 0; i < 2; ++i)
      scheduler.admit(make_request(uint64_t{client} * 10 + i, client, Priority::kNormal, 0), 0);
  }

  std::vector<uint64_t> served;
  for (const Batch& batch : drain_ready(scheduler, 0)) served.push_back(batch.tickets.front());

  EXPECT_THAT(served, ElementsAre(10, 20, 30, 11, 21, 31));
}

TEST(SchedulerOrdering, shouldServeQuietClientWithinOneTurnOfAFloodingClient) {
  constexpr uint32_t kFlooder = 7;
  constexpr uint32_t kQuiet = 3;
  constexpr uint64_t kQuietTicket = 1000;
  ModelScheduler scheduler(dynamic_policy(8), {});
  for (uint64_t ticket = 0; ticket < 100; ++ticket)
    scheduler.admit(make_request(ticket, kFlooder, Priority::kNormal, 0), 0);
  ASSERT_TRUE(scheduler.next_batch(0));
  scheduler.admit(make_request(kQuietTicket, kQuiet, Priority::kNormal, kUs), kUs);

  const auto batch = scheduler.next_batch(kUs);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(8, kQuietTicket, 9, 10, 11, 12, 13, 14));
}

TEST(SchedulerOrdering, shouldServeAClientPassedOverForAnotherLengthBucketFirstNextTime) {
  Policy policy = dynamic_policy(8);
  policy.length_buckets = {8, 16};
  ModelScheduler scheduler(policy, {});
  const auto admit = [&](uint64_t ticket, uint32_t client, int64_t length) {
    Request r = make_request(ticket, client, Priority::kNormal, 0);
    r.length = length;
    scheduler.admit(r, 0);
  };
  admit(11, 1, 4);
  admit(21, 2, 12);  // the only request in bucket 16
  admit(31, 3, 4);
  const auto first = scheduler.next_batch(0);
  ASSERT_TRUE(first);
  ASSERT_THAT(first->tickets, ElementsAre(11, 31));
  admit(12, 1, 4);
  admit(32, 3, 4);

  const auto second = scheduler.next_batch(0);

  ASSERT_TRUE(second);
  EXPECT_THAT(second->tickets, ElementsAre(21));
}

TEST(SchedulerOrdering, shouldAgeOneLevelPerAgingStepUpToHigh) {
  const QueuedRequest low{.priority = Priority::kLow, .arrival_ns = 0};
  const QueuedRequest normal{.priority = Priority::kNormal, .arrival_ns = 0};

  EXPECT_EQ(effective_level(low, kAgingNs - 1, kAgingNs), Priority::kLow);
  EXPECT_EQ(effective_level(low, kAgingNs, kAgingNs), Priority::kNormal);
  EXPECT_EQ(effective_level(low, 2 * kAgingNs, kAgingNs), Priority::kHigh);
  EXPECT_EQ(effective_level(low, 100 * kAgingNs, kAgingNs), Priority::kHigh);
  EXPECT_EQ(effective_level(normal, kAgingNs, kAgingNs), Priority::kHigh);
  EXPECT_EQ(effective_level(low, 100 * kAgingNs, 0), Priority::kLow);
}

TEST(SchedulerOrdering, shouldNeverAgeARequestAheadOfACriticalOne) {
  Policy policy = dynamic_policy(8);
  policy.aging_ns = kAgingNs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 1, Priority::kLow, 0), 0);
  const uint64_t later_ns = 100 * kAgingNs;
  scheduler.admit(make_request(2, 2, Priority::kCritical, later_ns), later_ns);

  const auto batch = scheduler.next_batch(later_ns);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(2, 1));
}

TEST(SchedulerOrdering, shouldLetAnAgedRequestTakeItsTurnAmongHighPriorityClients) {
  Policy policy = dynamic_policy(2);
  policy.aging_ns = kAgingNs;
  ModelScheduler scheduler(policy, {});
  scheduler.admit(make_request(1, 5, Priority::kLow, 0), 0);
  const uint64_t now_ns = 2 * kAgingNs;
  for (uint64_t ticket = 10; ticket < 20; ++ticket)
    scheduler.admit(make_request(ticket, 1, Priority::kHigh, now_ns), now_ns);

  const auto batch = scheduler.next_batch(now_ns);

  ASSERT_TRUE(batch);
  EXPECT_THAT(batch->tickets, ElementsAre(10, 1));
}

// A permanent high-priority backlog: client 1 offers 8 high requests per ms for
// 100 ms, the device runs 4 per ms. A low request from client 2 arrives at
// kLowArrivalNs, when the backlog has built up; its ticket is kLowTicket.
constexpr uint64_t kHighIntervalNs = 125 * kUs;
constexpr std::size_t kHighRequests = 800;
constexpr uint64_t kHighLoadEndNs = kHighRequests * kHighIntervalNs;
constexpr uint64_t kLowArrivalNs = 5 * kMs;
constexpr uint64_t kLowTicket = kLowArrivalNs / kHighIntervalNs;  // its index in the trace
constexpr uint64_t kBatchExecNs = kMs;

std::vector<SimulatedRequest> low_request_under_permanent_high_load() {
  std::vector<SimulatedRequest> trace;
  for (std::size_t i = 0; i < kHighRequests; ++i) {
    if (trace.size() == kLowTicket) {
      trace.push_back({.arrival_ns = kLowArrivalNs, .client = 2, .priority = Priority::kLow});
    }
    trace.push_back({.arrival_ns = i * kHighIntervalNs, .client = 1, .priority = Priority::kHigh});
  }
  return trace;
}

TEST(SchedulerOrdering, shouldDispatchLowRequestWithinTwoAgingStepsUnderPermanentHighLoad) {
  Policy policy = dynamic_policy(4);
  policy.aging_ns = kAgingNs;
  ModelScheduler scheduler(policy, {});

  const SimulationResult result = simulate(scheduler, low_request_under_permanent_high_load(),
                                           [](uint32_t) { return kBatchExecNs; });

  ASSERT_TRUE(result.dispatch_ns_by_ticket.contains(kLowTicket));
  const uint64_t waited_ns = result.dispatch_ns_by_ticket.at(kLowTicket) - kLowArrivalNs;
  EXPECT_GE(waited_ns, 2 * kAgingNs);  // strict priority held it until it aged to high
  EXPECT_LE(waited_ns, 2 * kAgingNs + kBatchExecNs);
}

TEST(SchedulerOrdering, shouldHoldLowRequestBehindTheWholeHighLoadWithAgingOff) {
  ModelScheduler scheduler(dynamic_policy(4), {});

  const SimulationResult result = simulate(scheduler, low_request_under_permanent_high_load(),
                                           [](uint32_t) { return kBatchExecNs; });

  ASSERT_TRUE(result.dispatch_ns_by_ticket.contains(kLowTicket));
  EXPECT_GT(result.dispatch_ns_by_ticket.at(kLowTicket), kHighLoadEndNs);
}

}  // namespace
}  // namespace coproc::daemon::sched
