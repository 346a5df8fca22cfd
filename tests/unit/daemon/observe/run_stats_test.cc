// RunStats (daemon/observe/run_stats.h): each event moves its counters once, in its writer's
// block of the model and nowhere else, so the stats page's books balance.
#include "observe/run_stats.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "coproc/coproc_generated.h"
#include "observe/registry.h"

namespace coproc::daemon {
namespace {

constexpr uint32_t kModels = 2;

std::vector<uint8_t> model_table(uint32_t count) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::ModelInfo>> models;
  for (uint32_t i = 0; i < count; ++i) {
    models.push_back(fb::CreateModelInfo(fbb, i, fbb.CreateString(std::to_string(i)), 0, 0, 8));
  }
  fbb.Finish(fb::CreateModelTable(fbb, fbb.CreateVector(models)));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

class RunStatsTest : public ::testing::Test {
 protected:
  static Registry make_registry() {
    RegistryInfo info;
    info.version = "test";
    info.client_slots = 1;
    info.device_names[0] = "cpu";
    auto registry = Registry::create(model_table(kModels), kModels * kStatsWriters, -1, info);
    COPROC_CHECK(registry.ok());
    return std::move(registry.value());
  }
  wire::ModelStats& block(uint32_t model, uint32_t writer) {
    return registry_.model_stats(model * kStatsWriters + writer);
  }

  Registry registry_ = make_registry();
};

TEST_F(RunStatsTest, shouldCountARunInItsWritersBlockAndOnTheDeviceThatRanIt) {
  RunStats worker(registry_, kWorkerWriter);

  worker.ran(/*model=*/1, /*on_gpu=*/false, /*rows=*/4, /*exec_ns=*/1000);

  wire::ModelStats& st = block(1, kWorkerWriter);
  EXPECT_EQ(st.batches.load(), 1u);
  EXPECT_EQ(st.batches_on_gpu.load(), 0u);
  EXPECT_EQ(st.batch_rows.load(), 4u);
  EXPECT_EQ(st.exec_ns_sum.load(), 1000u);
  EXPECT_EQ(st.batch_size_histogram[wire::histogram_bucket(4, wire::kBatchSizeBuckets)].load(), 1u);
  EXPECT_EQ(st.exec_ns_histogram[wire::histogram_bucket(1000, wire::kLatencyBuckets)].load(), 1u);
  EXPECT_EQ(registry_.device_stats(0).by_writer[kWorkerWriter].busy_ns.load(), 1000u);
  EXPECT_EQ(registry_.device_stats(0).by_writer[kWorkerWriter].batches.load(), 1u);
  EXPECT_EQ(block(1, kPollerWriter).batches.load(), 0u);
  EXPECT_EQ(block(0, kWorkerWriter).batches.load(), 0u);
}

TEST_F(RunStatsTest, shouldCountAnOkCompletionWithItsLatencies) {
  RunStats poller(registry_, kPollerWriter);

  poller.completed_ok(0, /*queue_ns=*/200, /*e2e_ns=*/900);

  wire::ModelStats& st = block(0, kPollerWriter);
  EXPECT_EQ(st.completed[0].load(), 1u);
  EXPECT_EQ(st.queue_ns_sum.load(), 200u);
  EXPECT_EQ(st.e2e_ns_sum.load(), 900u);
  EXPECT_EQ(st.queue_ns_histogram[wire::histogram_bucket(200, wire::kLatencyBuckets)].load(), 1u);
  EXPECT_EQ(st.e2e_ns_histogram[wire::histogram_bucket(900, wire::kLatencyBuckets)].load(), 1u);
}

TEST_F(RunStatsTest, shouldKeepTheBooksBalancedForEveryWayARequestLeaves) {
  RunStats poller(registry_, kPollerWriter);
  RunStats worker(registry_, kWorkerWriter);

  poller.rejected_invalid(0);  // refused for its shapes, then answered
  poller.completed(0, ErrorCode::kInvalidArgument);
  poller.rejected_queue_full(0);
  poller.completed(0, ErrorCode::kResourceExhausted);
  poller.accepted(0);  // cancelled while queued
  poller.stopped(0, ErrorCode::kCancelled);
  poller.completed(0, ErrorCode::kCancelled);
  poller.accepted(0);  // expired on the worker
  worker.stopped(0, ErrorCode::kDeadlineExceeded);
  worker.completed(0, ErrorCode::kDeadlineExceeded);
  poller.accepted(0);  // its client died
  worker.dropped_client_gone(0);

  uint64_t in = 0, out = 0;
  for (uint32_t w = 0; w < kStatsWriters; ++w) {
    wire::ModelStats& st = block(0, w);
    in += st.accepted.load() + st.rejected_invalid.load() + st.rejected_queue_full.load();
    for (const auto& c : st.completed) out += c.load();
    out += st.dropped_client_gone.load();
  }
  EXPECT_EQ(in, 5u);
  EXPECT_EQ(out, 5u);
  EXPECT_EQ(block(0, kPollerWriter).cancelled.load(), 1u);
  EXPECT_EQ(block(0, kWorkerWriter).expired.load(), 1u);
}

TEST_F(RunStatsTest, shouldPublishTheQueueDepthInBlockZero) {
  const std::vector<std::size_t> depth{1, 2, 3, 4};

  publish_queue_depth(registry_, 1, depth);

  for (uint32_t p = 0; p < wire::kPriorityCount; ++p) {
    EXPECT_EQ(block(1, kPollerWriter).queue_depth[p].load(), depth[p]);
  }
}

}  // namespace
}  // namespace coproc::daemon
