// Unit tests of the SPSC ring: the happy paths, and a hostile peer writing the
// shared indices and slot headers. The ring's memory sits between two guard
// zones so a write outside it is caught even without a sanitizer.
#include "coproc/ring/spsc_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

namespace coproc::ring {
namespace {

constexpr RingGeometry kGeometry{8, 128};  // max payload 120 bytes
constexpr std::size_t kGuardBytes = 4096;
constexpr std::byte kGuardFill{0xA5};

class SpscRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::size_t bytes = ring_bytes(kGeometry);
    memory_.reset(new (std::align_val_t{kCacheLineBytes}) std::byte[bytes + 2 * kGuardBytes]);
    std::fill_n(memory_.get(), bytes + 2 * kGuardBytes, kGuardFill);
    reset_and_lap(0);
  }

  void TearDown() override {
    const std::size_t bytes = ring_bytes(kGeometry);
    const std::byte* before = memory_.get();
    const std::byte* after = base() + bytes;
    EXPECT_TRUE(std::all_of(before, before + kGuardBytes, [](std::byte b) {
      return b == kGuardFill;
    })) << "something wrote before the ring";
    EXPECT_TRUE(std::all_of(after, after + kGuardBytes, [](std::byte b) {
      return b == kGuardFill;
    })) << "something wrote after the ring";
  }

  // A fresh ring whose indices have both advanced by `messages`.
  void reset_and_lap(uint64_t messages) {
    ring_init(base(), kGeometry);
    producer_ = RingProducer(base(), kGeometry);
    consumer_ = RingConsumer(base(), kGeometry);
    uint32_t bytes = 0;
    for (uint64_t i = 0; i < messages; ++i) {
      ASSERT_TRUE(push_u64(i));
      ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
    }
  }

  std::byte* base() { return memory_.get() + kGuardBytes; }
  // What a hostile peer can reach: the indices at their documented offsets.
  std::atomic<uint64_t>& shared_tail() { return *reinterpret_cast<std::atomic<uint64_t>*>(base()); }
  std::atomic<uint64_t>& shared_head() {
    return *reinterpret_cast<std::atomic<uint64_t>*>(base() + 2 * kCacheLineBytes);
  }
  std::byte* slot(uint64_t index) {
    return base() + 4 * kCacheLineBytes + (index % kGeometry.capacity) * kGeometry.slot_bytes;
  }

  bool push_u64(uint64_t value) { return producer_.try_push(&value, sizeof value); }
  RingConsumer::Pop pop(uint32_t* bytes) { return consumer_.try_pop(out_, bytes); }
  uint64_t out_u64() const {
    uint64_t value = 0;
    std::memcpy(&value, out_.data(), sizeof value);
    return value;
  }

  struct AlignedDelete {
    void operator()(std::byte* p) const {
      ::operator delete[](p, std::align_val_t{kCacheLineBytes});
    }
  };
  std::unique_ptr<std::byte[], AlignedDelete> memory_;
  RingProducer producer_;
  RingConsumer consumer_;
  std::vector<std::byte> out_ = std::vector<std::byte>(kGeometry.slot_bytes);
};

TEST(RingGeometryTest, shouldAcceptPowerOfTwoCapacityAndCacheLineMultipleSlots) {
  EXPECT_TRUE(is_valid({2, 64}));
  EXPECT_TRUE(is_valid({1024, 192}));
  EXPECT_TRUE(is_valid({1u << 20, 65536}));
}

TEST(RingGeometryTest, shouldRejectCapacityOutsideRangeOrNotPowerOfTwo) {
  EXPECT_FALSE(is_valid({0, 64}));
  EXPECT_FALSE(is_valid({1, 64}));
  EXPECT_FALSE(is_valid({3, 64}));
  EXPECT_FALSE(is_valid({1000, 64}));
  EXPECT_FALSE(is_valid({1u << 21, 64}));
}

TEST(RingGeometryTest, shouldRejectSlotBytesOutsideRangeOrNotCacheLineMultiple) {
  EXPECT_FALSE(is_valid({8, 0}));
  EXPECT_FALSE(is_valid({8, 32}));
  EXPECT_FALSE(is_valid({8, 100}));
  EXPECT_FALSE(is_valid({8, 65536 + 64}));
}

TEST(RingGeometryTest, shouldSizeRingAsControlBlockPlusSlots) {
  const RingGeometry g{16, 256};
  const std::size_t bytes = ring_bytes(g);
  EXPECT_EQ(bytes % kCacheLineBytes, 0u);
  EXPECT_GE(bytes, std::size_t{16} * 256 + 2 * kCacheLineBytes);
  EXPECT_EQ(ring_bytes({32, 256}) - bytes, std::size_t{16} * 256);
}

TEST_F(SpscRingTest, shouldReportEmptyBeforeAnythingIsPublished) {
  uint32_t bytes = 0;
  EXPECT_TRUE(consumer_.empty());
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kEmpty);
}

TEST_F(SpscRingTest, shouldRoundTripOneMessage) {
  const char message[] = "hello ring";
  ASSERT_TRUE(producer_.try_push(message, sizeof message));
  EXPECT_FALSE(consumer_.empty());
  uint32_t bytes = 0;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  ASSERT_EQ(bytes, sizeof message);
  EXPECT_EQ(std::memcmp(out_.data(), message, sizeof message), 0);
  EXPECT_TRUE(consumer_.empty());
}

TEST_F(SpscRingTest, shouldHandOutEightByteAlignedPayloadOfMaxPayloadBytes) {
  const std::span<std::byte> area = producer_.claim();
  ASSERT_EQ(area.size(), producer_.max_payload());
  EXPECT_EQ(producer_.max_payload(), kGeometry.slot_bytes - 8);
  EXPECT_EQ(consumer_.max_payload(), producer_.max_payload());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(area.data()) % 8, 0u);
}

TEST_F(SpscRingTest, shouldRefusePushWhenFullAndAcceptAgainAfterPop) {
  for (uint64_t i = 0; i < kGeometry.capacity; ++i) ASSERT_TRUE(push_u64(i));
  EXPECT_FALSE(push_u64(99));
  EXPECT_TRUE(producer_.claim().empty());
  EXPECT_FALSE(producer_.corrupt());
  uint32_t bytes = 0;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  EXPECT_EQ(out_u64(), 0u);
  EXPECT_TRUE(push_u64(kGeometry.capacity));
}

TEST_F(SpscRingTest, shouldKeepOrderAndContentOverManyLaps) {
  constexpr uint64_t kMessages = 1000 * kGeometry.capacity + 3;
  uint64_t next_expected = 0;
  uint32_t bytes = 0;
  for (uint64_t i = 0; i < kMessages; ++i) {
    // Keep between 0 and capacity messages in flight so the indices lap at every fill level.
    while (!push_u64(i)) {
      ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
      ASSERT_EQ(out_u64(), next_expected++);
    }
    if (i % 3 == 0) {
      ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
      ASSERT_EQ(out_u64(), next_expected++);
    }
  }
  while (pop(&bytes) == RingConsumer::Pop::kOk) ASSERT_EQ(out_u64(), next_expected++);
  EXPECT_EQ(next_expected, kMessages);
  EXPECT_FALSE(consumer_.corrupt());
}

TEST_F(SpscRingTest, shouldCarryMaxPayloadMessage) {
  std::vector<std::byte> message(producer_.max_payload());
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = std::byte(i * 7 + 1);
  ASSERT_TRUE(producer_.try_push(message.data(), static_cast<uint32_t>(message.size())));
  uint32_t bytes = 0;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  ASSERT_EQ(bytes, message.size());
  EXPECT_EQ(std::memcmp(out_.data(), message.data(), bytes), 0);
}

TEST_F(SpscRingTest, shouldRefusePushLargerThanMaxPayloadWithoutWriting) {
  std::vector<std::byte> message(producer_.max_payload() + 1);
  EXPECT_FALSE(producer_.try_push(message.data(), static_cast<uint32_t>(message.size())));
  EXPECT_TRUE(consumer_.empty());
}

TEST_F(SpscRingTest, shouldCarryZeroLengthMessage) {
  ASSERT_TRUE(producer_.try_push(nullptr, 0));
  uint32_t bytes = 123;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  EXPECT_EQ(bytes, 0u);
  EXPECT_TRUE(consumer_.empty());
}

TEST_F(SpscRingTest, shouldRejectTailBeyondCapacityAsCorrupt) {
  shared_tail().store(kGeometry.capacity + 1);
  uint32_t bytes = 0;
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
  EXPECT_TRUE(consumer_.corrupt());
  EXPECT_FALSE(consumer_.empty()) << "a corrupt ring is not empty, so waiters go on to try_pop";
}

TEST_F(SpscRingTest, shouldRejectTailBehindHeadAsCorrupt) {
  ASSERT_TRUE(push_u64(1));
  ASSERT_TRUE(push_u64(2));
  uint32_t bytes = 0;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  shared_tail().store(1);
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
}

TEST_F(SpscRingTest, shouldRejectLengthHeaderAboveMaxPayloadAsCorrupt) {
  ASSERT_TRUE(push_u64(7));
  const uint32_t hostile_length = consumer_.max_payload() + 1;
  std::memcpy(slot(0), &hostile_length, sizeof hostile_length);
  uint32_t bytes = 0;
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
  EXPECT_EQ(shared_head().load(), 0u) << "a corrupt slot must not be released";
}

TEST_F(SpscRingTest, shouldStayCorruptAfterThePeerRepairsTheRing) {
  ASSERT_TRUE(push_u64(7));
  const uint32_t hostile_length = 0xFFFFFFFFu;
  std::memcpy(slot(0), &hostile_length, sizeof hostile_length);
  uint32_t bytes = 0;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
  const uint32_t repaired_length = 8;
  std::memcpy(slot(0), &repaired_length, sizeof repaired_length);
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
  shared_tail().store(1u << 30);
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
  shared_tail().store(1);
  EXPECT_EQ(pop(&bytes), RingConsumer::Pop::kCorrupt);
  EXPECT_TRUE(consumer_.corrupt());
}

TEST_F(SpscRingTest, shouldReportProducerCorruptWhenHeadIsAheadOfTail) {
  for (uint64_t i = 0; i < kGeometry.capacity; ++i) ASSERT_TRUE(push_u64(i));
  shared_head().store(kGeometry.capacity + 5);
  EXPECT_TRUE(producer_.claim().empty());
  EXPECT_TRUE(producer_.corrupt());
  shared_head().store(kGeometry.capacity);  // a repair does not clear it
  EXPECT_FALSE(push_u64(1));
  EXPECT_TRUE(producer_.corrupt());
}

TEST_F(SpscRingTest, shouldKeepProducerInsideRingWhenSharedHeadIsScribbled) {
  // Heads that would make a trusting producer see room beyond the ring. Each
  // case starts from a ring that has lapped twice; the guards are checked in
  // TearDown.
  constexpr uint64_t kLapped = 2 * kGeometry.capacity;
  const uint64_t hostile_heads[] = {~0ull, 1ull << 63, kLapped + 1,
                                    kLapped - kGeometry.capacity - 1, 0};
  for (const uint64_t head : hostile_heads) {
    SCOPED_TRACE(head);
    reset_and_lap(kLapped);
    shared_head().store(head);
    for (uint32_t i = 0; i < 3 * kGeometry.capacity; ++i) push_u64(0xDEAD);
    EXPECT_TRUE(producer_.corrupt());
  }
}

TEST_F(SpscRingTest, shouldKeepItsOwnIndexPrivateWhenPeerScribblesIt) {
  ASSERT_TRUE(push_u64(10));
  ASSERT_TRUE(push_u64(11));
  uint32_t bytes = 0;
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  shared_head().store(1000);  // the consumer's own index: it never reads it back
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  EXPECT_EQ(out_u64(), 11u);
  EXPECT_EQ(shared_head().load(), 2u) << "the consumer republishes its private index";
  shared_tail().store(0);  // the producer's own index: it never reads it back
  ASSERT_TRUE(push_u64(12));
  EXPECT_EQ(shared_tail().load(), 3u);
  ASSERT_EQ(pop(&bytes), RingConsumer::Pop::kOk);
  EXPECT_EQ(out_u64(), 12u);
}

TEST_F(SpscRingTest, shouldReturnSameSlotWhenClaimedTwiceBeforePublish) {
  const std::span<std::byte> first = producer_.claim();
  const std::span<std::byte> second = producer_.claim();
  EXPECT_EQ(first.data(), second.data());
  producer_.publish(0);
  EXPECT_NE(producer_.claim().data(), first.data());
}

TEST(RingDetachedTest, shouldBeFullAndEmptyWhenDefaultConstructed) {
  RingProducer producer;
  RingConsumer consumer;
  std::byte out[1];
  uint32_t bytes = 0;
  EXPECT_TRUE(producer.claim().empty());
  EXPECT_FALSE(producer.try_push(nullptr, 0));
  EXPECT_TRUE(consumer.empty());
  EXPECT_EQ(consumer.try_pop(out, &bytes), RingConsumer::Pop::kEmpty);
}

TEST_F(SpscRingTest, shouldMoveOwnershipAndDetachTheSource) {
  RingProducer moved = std::move(producer_);
  EXPECT_TRUE(moved.try_push(nullptr, 0));
  EXPECT_TRUE(producer_.claim().empty());  // NOLINT(bugprone-use-after-move): detached by contract
}

using SpscRingDeathTest = SpscRingTest;

TEST_F(SpscRingDeathTest, shouldAbortWhenPublishingMoreThanMaxPayload) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ASSERT_FALSE(producer_.claim().empty());
  EXPECT_DEATH(producer_.publish(producer_.max_payload() + 1), "publish");
}

TEST_F(SpscRingDeathTest, shouldAbortWhenPublishingWithoutClaim) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(producer_.publish(0), "publish");
}

TEST_F(SpscRingDeathTest, shouldAbortWhenPopBufferIsSmallerThanMaxPayload) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<std::byte> small(consumer_.max_payload() - 1);
  uint32_t bytes = 0;
  EXPECT_DEATH(consumer_.try_pop(small, &bytes), "try_pop");
}

}  // namespace
}  // namespace coproc::ring
