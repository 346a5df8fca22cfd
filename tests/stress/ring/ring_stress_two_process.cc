// Two-process stress of the SPSC ring over a real shared mapping: memfd +
// mmap(MAP_SHARED), ring_init, fork. The child produces, the parent consumes
// and checks the order, length and content of every message, then the child's
// exit status. Both sides wait with wait_until/notify (a short spin, then the
// futex) when the ring is full or empty, so the shared futex path runs across
// processes too. Not built under ThreadSanitizer, which does not support fork
// with this much going on.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "coproc/ring/spsc_ring.h"
#include "coproc/ring/wait.h"
#include "message_pattern.h"

namespace coproc::ring {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr RingGeometry kGeometry{1024, 128};
constexpr WaitPolicy kWait{50'000, 20'000 * kMs, 100 * kMs};  // spin 50 us, give up after 20 s
constexpr int kChildFailed = 3;
// Every this many messages one side stops for kPauseUs, so the other side
// outwaits its spin and sleeps on the futex: both directions of the wake
// protocol are exercised across processes on every run, not just by chance.
constexpr uint64_t kPauseEvery = 1'000'000;
constexpr useconds_t kPauseUs = 2'000;

uint64_t messages_to_send() {
  if (const char* env = std::getenv("COPROC_RING_TWO_PROCESS_MESSAGES")) return std::stoull(env);
  return 10'000'000;
}

// The start of the shared segment: two doorbells, every word on its own line,
// then the ring at an offset that keeps it cache-line aligned.
struct Doorbells {
  alignas(kCacheLineBytes) std::atomic<uint32_t> data_seq{0};  // the consumer sleeps here
  alignas(kCacheLineBytes) std::atomic<uint32_t> data_sleepers{0};
  alignas(kCacheLineBytes) std::atomic<uint32_t> space_seq{0};  // the producer sleeps here
  alignas(kCacheLineBytes) std::atomic<uint32_t> space_sleepers{0};
};
constexpr std::size_t kRingOffsetBytes = sizeof(Doorbells);
static_assert(kRingOffsetBytes % kCacheLineBytes == 0);

[[noreturn]] void run_producer(Doorbells* bells, void* ring, pid_t parent, uint64_t messages) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kChildFailed);
  RingProducer producer(ring, kGeometry);
  const auto parent_alive = [parent] { return getppid() == parent; };
  for (uint64_t seq = 0; seq < messages; ++seq) {
    if (seq % kPauseEvery == kPauseEvery / 2) usleep(kPauseUs);  // the consumer runs dry
    std::span<std::byte> slot = producer.claim();
    if (slot.empty()) {
      const WaitOutcome outcome = wait_until(
          bells->space_seq, bells->space_sleepers, [&] { return !producer.claim().empty(); },
          parent_alive, kWait);
      if (outcome != WaitOutcome::kReady) _exit(kChildFailed);
      slot = producer.claim();
    }
    producer.publish(test_support::fill_message(seq, slot, producer.max_payload()));
    notify(bells->data_seq, bells->data_sleepers);
  }
  _exit(0);
}

TEST(RingTwoProcessStressTest, shouldDeliverEveryMessageInOrderFromChildToParent) {
  const uint64_t messages = messages_to_send();
  const std::size_t segment_bytes = kRingOffsetBytes + ring_bytes(kGeometry);
  const int fd = memfd_create("coproc-ring-stress", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(segment_bytes)), 0);
  void* segment = mmap(nullptr, segment_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(segment, MAP_FAILED);
  close(fd);
  auto* bells = ::new (segment) Doorbells;
  void* ring = static_cast<std::byte*>(segment) + kRingOffsetBytes;
  ring_init(ring, kGeometry);

  const pid_t parent = getpid();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) run_producer(bells, ring, parent, messages);

  int status = 0;
  bool reaped = false;
  const auto child_alive = [&] {
    if (!reaped && waitpid(child, &status, WNOHANG) == child) reaped = true;
    return !reaped;
  };
  RingConsumer consumer(ring, kGeometry);
  std::vector<std::byte> out(consumer.max_payload());
  uint64_t received = 0;
  uint64_t bad_messages = 0;
  WaitOutcome last_wait = WaitOutcome::kReady;
  const int64_t start_ns = monotonic_ns();
  while (received < messages) {
    uint32_t bytes = 0;
    const RingConsumer::Pop pop = consumer.try_pop(out, &bytes);
    if (pop == RingConsumer::Pop::kOk) {
      notify(bells->space_seq, bells->space_sleepers);
      if (!test_support::is_message(received, std::span(out).first(bytes),
                                    consumer.max_payload())) {
        ++bad_messages;
      }
      ++received;
      if (received % kPauseEvery == 0) usleep(kPauseUs);  // the ring fills, the producer sleeps
      continue;
    }
    if (pop == RingConsumer::Pop::kCorrupt) break;
    last_wait = wait_until(
        bells->data_seq, bells->data_sleepers, [&] { return !consumer.empty(); }, child_alive,
        kWait);
    if (last_wait != WaitOutcome::kReady) break;
  }
  const int64_t elapsed_ns = monotonic_ns() - start_ns;
  if (received < messages && !reaped) kill(child, SIGKILL);
  if (!reaped) {
    ASSERT_EQ(waitpid(child, &status, 0), child);
  }
  const uint32_t consumer_wakes = bells->data_seq.load();
  const uint32_t producer_wakes = bells->space_seq.load();
  munmap(segment, segment_bytes);

  EXPECT_FALSE(consumer.corrupt());
  EXPECT_EQ(last_wait, WaitOutcome::kReady);
  EXPECT_EQ(bad_messages, 0u);
  EXPECT_EQ(received, messages);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  if (messages >= 2 * kPauseEvery) {
    EXPECT_GT(consumer_wakes, 0u) << "the consumer never slept on the futex";
    EXPECT_GT(producer_wakes, 0u) << "the producer never slept on the futex";
  }
  std::printf(
      "[ ring ] two processes: %llu messages in %.3f s, %.2f M messages/s; "
      "futex wake calls: to consumer %u, to producer %u\n",
      static_cast<unsigned long long>(received), static_cast<double>(elapsed_ns) / 1e9,
      static_cast<double>(received) * 1e3 / static_cast<double>(elapsed_ns), consumer_wakes,
      producer_wakes);
}

}  // namespace
}  // namespace coproc::ring
