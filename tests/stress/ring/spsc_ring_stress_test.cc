// Threaded SPSC stress: one producer thread and one consumer thread on a small
// ring, waiting with wait_until/notify when full or empty. Thread-based so it
// runs under ThreadSanitizer, which checks that every slot access is ordered
// by the ring's release/acquire pairs. The consumer checks the order, length
// and content of every message: completeness, not just "did not crash".
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "coproc/ring/spsc_ring.h"
#include "coproc/ring/wait.h"
#include "message_pattern.h"

namespace coproc::ring {
namespace {

constexpr int64_t kMs = 1'000'000;
// Small enough that the ring runs full and empty often, so both wait paths run.
constexpr RingGeometry kGeometry{64, 192};
constexpr WaitPolicy kWait{20'000, 10'000 * kMs, 100 * kMs};  // spin 20 us, give up after 10 s
// Each side stops this many times for kPause, so the other outwaits its spin
// and sleeps on the futex: both wake directions run on every run.
constexpr uint64_t kPauses = 8;
constexpr auto kPause = std::chrono::milliseconds(2);

uint64_t messages_to_send() {
  if (const char* env = std::getenv("COPROC_RING_STRESS_MESSAGES")) return std::stoull(env);
#if defined(__SANITIZE_THREAD__)
  return 200'000;
#else
  return 2'000'000;
#endif
}

struct Doorbell {
  alignas(kCacheLineBytes) std::atomic<uint32_t> seq{0};
  alignas(kCacheLineBytes) std::atomic<uint32_t> sleepers{0};
};

struct AlignedDelete {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{kCacheLineBytes}); }
};

TEST(SpscRingStressTest, shouldDeliverEveryMessageInOrderBetweenTwoThreads) {
  const uint64_t messages = messages_to_send();
  const uint64_t pause_every = std::max<uint64_t>(messages / kPauses, 1);
  std::unique_ptr<std::byte[], AlignedDelete> memory(new (std::align_val_t{kCacheLineBytes})
                                                         std::byte[ring_bytes(kGeometry)]);
  ring_init(memory.get(), kGeometry);
  Doorbell data_ready;   // the consumer sleeps here; the producer rings after publish
  Doorbell space_ready;  // the producer sleeps here; the consumer rings after pop
  std::atomic<bool> consumer_alive{true};
  std::atomic<uint64_t> producer_timeouts{0};

  std::thread producer_thread([&] {
    RingProducer producer(memory.get(), kGeometry);
    for (uint64_t seq = 0; seq < messages; ++seq) {
      if (seq % pause_every == pause_every / 2) std::this_thread::sleep_for(kPause);
      std::span<std::byte> slot = producer.claim();
      if (slot.empty()) {
        const WaitOutcome outcome = wait_until(
            space_ready.seq, space_ready.sleepers, [&] { return !producer.claim().empty(); },
            [&] { return consumer_alive.load(); }, kWait);
        if (outcome != WaitOutcome::kReady) {
          producer_timeouts.fetch_add(1);
          return;
        }
        slot = producer.claim();
      }
      producer.publish(test_support::fill_message(seq, slot, producer.max_payload()));
      notify(data_ready.seq, data_ready.sleepers);
    }
  });

  RingConsumer consumer(memory.get(), kGeometry);
  std::vector<std::byte> out(consumer.max_payload());
  uint64_t received = 0;
  uint64_t bad_messages = 0;
  uint64_t consumer_timeouts = 0;
  const int64_t start_ns = monotonic_ns();
  while (received < messages) {
    uint32_t bytes = 0;
    const RingConsumer::Pop pop = consumer.try_pop(out, &bytes);
    if (pop == RingConsumer::Pop::kOk) {
      notify(space_ready.seq, space_ready.sleepers);
      if (!test_support::is_message(received, std::span(out).first(bytes),
                                    consumer.max_payload())) {
        ++bad_messages;
      }
      ++received;
      if (received % pause_every == 0) std::this_thread::sleep_for(kPause);
      continue;
    }
    if (pop == RingConsumer::Pop::kCorrupt) break;
    const WaitOutcome outcome = wait_until(
        data_ready.seq, data_ready.sleepers, [&] { return !consumer.empty(); },
        [&] { return producer_timeouts.load() == 0; }, kWait);
    if (outcome != WaitOutcome::kReady) {
      ++consumer_timeouts;
      break;
    }
  }
  const int64_t elapsed_ns = monotonic_ns() - start_ns;
  consumer_alive.store(false);
  producer_thread.join();

  EXPECT_FALSE(consumer.corrupt());
  EXPECT_EQ(consumer_timeouts, 0u);
  EXPECT_EQ(producer_timeouts.load(), 0u);
  EXPECT_EQ(bad_messages, 0u);
  EXPECT_EQ(received, messages);
  EXPECT_GT(data_ready.seq.load(), 0u) << "the consumer never slept on the futex";
  EXPECT_GT(space_ready.seq.load(), 0u) << "the producer never slept on the futex";
  std::printf(
      "[ ring ] two threads: %llu messages in %.3f s, %.2f M messages/s; "
      "futex wake calls: to consumer %u, to producer %u\n",
      static_cast<unsigned long long>(received), static_cast<double>(elapsed_ns) / 1e9,
      static_cast<double>(received) * 1e3 / static_cast<double>(elapsed_ns), data_ready.seq.load(),
      space_ready.seq.load());
}

}  // namespace
}  // namespace coproc::ring
