// coproc-stat's arithmetic on made-up snapshots: percentile estimates from
// log2 buckets and the tuning suggestions with their triggering numbers.
#include "snapshot.h"

#include <gtest/gtest.h>

namespace coproc::stat {
namespace {

TEST(StatSnapshot, shouldEstimatePercentilesInsideTheLog2BucketThatHoldsThem) {
  std::array<uint64_t, wire::kLatencyBuckets> h{};
  h[10] = 100;  // 100 values in [1024, 2048)
  EXPECT_DOUBLE_EQ(bucket_percentile(h, 0.5), 1024.0 + 512.0);
  EXPECT_DOUBLE_EQ(bucket_percentile(h, 1.0), 2048.0);
  h[20] = 100;  // and 100 in [2^20, 2^21)
  EXPECT_LE(bucket_percentile(h, 0.5), 2048.0);
  EXPECT_GE(bucket_percentile(h, 0.9), double(1 << 20));
  EXPECT_EQ(bucket_percentile(std::array<uint64_t, wire::kLatencyBuckets>{}, 0.5), 0.0);
}

TEST(StatSnapshot, shouldSuggestLengthBucketsWhenPaddingWasteIsHigh) {
  Snapshot s;
  ModelSnapshot m;
  m.name = "seq";
  m.accepted = 1000;
  m.padded_elements_wasted = 600;
  m.padded_elements_total = 1000;
  s.models.push_back(m);
  const auto advice = suggest(s);
  ASSERT_EQ(advice.size(), 1u);
  EXPECT_EQ(advice[0].model, "seq");
  EXPECT_NE(advice[0].text.find("60.0%"), std::string::npos) << advice[0].text;
  EXPECT_NE(advice[0].text.find("length_buckets"), std::string::npos) << advice[0].text;
}

TEST(StatSnapshot, shouldSuggestSmallerWaitsWhenBatchesStaySmallButRequestsQueueLong) {
  Snapshot s;
  ModelSnapshot m;
  m.name = "mlp";
  m.max_batch = 32;
  m.accepted = 1000;
  m.batches = 1000;
  m.batch_rows = 1000;              // mean batch 1
  m.queue_ns_histogram[23] = 1000;  // ~8-16 ms each
  m.expired = 50;
  m.rejected_queue_full = 30;
  s.models.push_back(m);
  const auto advice = suggest(s);
  ASSERT_EQ(advice.size(), 3u);
  EXPECT_NE(advice[0].text.find("mean batch 1.0 of max_batch 32"), std::string::npos)
      << advice[0].text;
  EXPECT_NE(advice[1].text.find("50 of 1030 requests expired"), std::string::npos)
      << advice[1].text;
  EXPECT_NE(advice[2].text.find("30 of 1030 requests rejected with the queue full"),
            std::string::npos)
      << advice[2].text;
}

TEST(StatSnapshot, shouldSayNothingAboutAModelWithFewRequests) {
  Snapshot s;
  ModelSnapshot m;
  m.name = "quiet";
  m.accepted = 10;
  m.expired = 10;
  s.models.push_back(m);
  EXPECT_TRUE(suggest(s).empty());
}

}  // namespace
}  // namespace coproc::stat
