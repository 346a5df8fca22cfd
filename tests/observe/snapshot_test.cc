// The stats page's histogram buckets and coproc-stat's arithmetic on made-up
// snapshots: percentile estimates and the tuning suggestions with their
// triggering numbers.
#include "coproc/stats/snapshot.h"

#include <gtest/gtest.h>

#include <random>

#include "suggest.h"

namespace coproc::stat {
namespace {

using stats::bucket_percentile;
using stats::ModelSnapshot;
using stats::Snapshot;
using wire::histogram_bucket;
using wire::histogram_bucket_lower;
using wire::histogram_bucket_upper;

// Every value lands in the bucket whose edges hold it, buckets are ordered and
// contiguous, and none is wider than a quarter of its lower edge (past the
// exact ones): the 25% error bound the percentiles rely on.
void check_bucket(uint64_t v, uint32_t buckets) {
  const uint32_t b = histogram_bucket(v, buckets);
  ASSERT_LT(b, buckets);
  if (b + 1 < buckets) {
    ASSERT_LE(v, histogram_bucket_upper(b)) << v;
  }
  ASSERT_GE(v, histogram_bucket_lower(b)) << v;
}

TEST(StatsHistogram, shouldPutEveryValueInsideItsBucketsEdges) {
  for (uint64_t v = 0; v <= 100'000; ++v) check_bucket(v, wire::kLatencyBuckets);
  std::mt19937_64 random(7);
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t v = random() >> (random() % 64);
    check_bucket(v, wire::kLatencyBuckets);
    check_bucket(v, wire::kBatchSizeBuckets);
  }
}

TEST(StatsHistogram, shouldHaveContiguousBucketsAtMostAQuarterWide) {
  for (uint32_t b = 1; b < wire::kLatencyBuckets; ++b) {
    EXPECT_EQ(histogram_bucket_lower(b), histogram_bucket_upper(b - 1) + 1) << b;
    const uint64_t width = histogram_bucket_upper(b) - histogram_bucket_lower(b) + 1;
    if (b >= 4) {
      EXPECT_LE(4 * width, histogram_bucket_lower(b)) << b;
    }
  }
  // The edges Prometheus's `le` shows: exact at 1..8, then four per power of two.
  const uint64_t edges[] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40};
  for (uint32_t b = 0; b < std::size(edges); ++b) EXPECT_EQ(histogram_bucket_upper(b), edges[b]);
  EXPECT_EQ(histogram_bucket(0, 64), 0u);
  EXPECT_EQ(histogram_bucket(8, 64), 7u);
  EXPECT_EQ(histogram_bucket(9, 64), 8u);
  EXPECT_EQ(histogram_bucket(uint64_t{1} << 62, wire::kBatchSizeBuckets),
            wire::kBatchSizeBuckets - 1);
}

TEST(StatsSnapshot, shouldEstimatePercentilesInsideTheBucketThatHoldsThem) {
  stats::LatencyHistogram h{};
  const uint32_t b = histogram_bucket(1100, wire::kLatencyBuckets);  // (1024, 1280]
  ASSERT_EQ(histogram_bucket_lower(b), 1025u);
  ASSERT_EQ(histogram_bucket_upper(b), 1280u);
  h[b] = 100;
  EXPECT_DOUBLE_EQ(bucket_percentile(h, 0.5), 1025.0 + (1280.0 - 1025.0) / 2);
  EXPECT_DOUBLE_EQ(bucket_percentile(h, 1.0), 1280.0);
  h[histogram_bucket(1'500'000, wire::kLatencyBuckets)] = 100;
  EXPECT_LE(bucket_percentile(h, 0.5), 1280.0);
  const double p90 = bucket_percentile(h, 0.9);
  EXPECT_GE(p90, 1'500'000 * 0.75);
  EXPECT_LE(p90, 1'500'000 * 1.25);
  EXPECT_EQ(bucket_percentile(stats::LatencyHistogram{}, 0.5), 0.0);
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
  m.batch_rows = 1000;                                                               // mean batch 1
  m.queue_ns_histogram[histogram_bucket(12'000'000, wire::kLatencyBuckets)] = 1000;  // 12 ms
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

TEST(StatSnapshot, shouldSuggestMoreCapacityForADeviceBusyAlmostAllTheTime) {
  Snapshot s;
  stats::DeviceSnapshot cpu;
  cpu.kind = "cpu";
  cpu.present = true;
  cpu.busy_fraction = 0.97;
  s.devices.push_back(cpu);
  stats::DeviceSnapshot gpu;
  gpu.kind = "gpu";
  gpu.busy_fraction = 0.99;  // not present: says nothing
  s.devices.push_back(gpu);
  const auto advice = suggest(s);
  ASSERT_EQ(advice.size(), 1u);
  EXPECT_EQ(advice[0].model, "device cpu");
  EXPECT_NE(advice[0].text.find("busy 97% of the last second"), std::string::npos)
      << advice[0].text;
  s.devices[0].busy_fraction = 0.5;
  EXPECT_TRUE(suggest(s).empty());
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
