// Tests of the futex wrappers and the spin-then-sleep wake protocol, with
// threads standing in for processes (the futex calls are the shared variants
// either way).
#include "coproc/ring/wait.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

namespace coproc::ring {
namespace {

constexpr int64_t kMs = 1'000'000;

// One doorbell: the futex word and its sleeper count, on their own lines as
// they would be in shared memory.
struct Doorbell {
  alignas(64) std::atomic<uint32_t> seq{0};
  alignas(64) std::atomic<uint32_t> sleepers{0};
};

constexpr auto kAlwaysAlive = [] { return true; };

TEST(FutexTest, shouldReturnValueChangedWhenWordDiffersFromExpected) {
  std::atomic<uint32_t> word{1};
  EXPECT_EQ(futex_wait(&word, 0, 1000 * kMs), FutexResult::kValueChanged);
}

TEST(FutexTest, shouldTimeOutWhenNobodyWakes) {
  std::atomic<uint32_t> word{0};
  const int64_t start_ns = monotonic_ns();
  EXPECT_EQ(futex_wait(&word, 0, 5 * kMs), FutexResult::kTimedOut);
  EXPECT_GE(monotonic_ns() - start_ns, 5 * kMs);
}

TEST(FutexTest, shouldWakeSleeperOnWakeAll) {
  std::atomic<uint32_t> word{0};
  std::atomic<bool> woken{false};
  std::thread sleeper([&] {
    while (futex_wait(&word, 0, -1) != FutexResult::kValueChanged) {
    }
    woken.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  word.store(1);
  futex_wake_all(&word);
  sleeper.join();
  EXPECT_TRUE(woken.load());
}

TEST(WaitTest, shouldReturnReadyAtOnceWhenAlreadyReady) {
  Doorbell bell;
  const WaitOutcome outcome =
      wait_until(bell.seq, bell.sleepers, [] { return true; }, kAlwaysAlive, {0, 0, 0});
  EXPECT_EQ(outcome, WaitOutcome::kReady);
  EXPECT_EQ(bell.sleepers.load(), 0u);
}

TEST(WaitTest, shouldWakeSleepingWaiterWhenNotified) {
  Doorbell bell;
  std::atomic<bool> work{false};
  WaitOutcome outcome = WaitOutcome::kTimedOut;
  // Slice and timeout far above the test's duration: only notify() can end the sleep early.
  std::thread waiter([&] {
    outcome =
        wait_until(bell.seq, bell.sleepers, [&] { return work.load(std::memory_order_acquire); },
                   kAlwaysAlive, {0, 20'000 * kMs, 20'000 * kMs});
  });
  while (bell.sleepers.load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int64_t notified_ns = monotonic_ns();
  work.store(true, std::memory_order_release);
  notify(bell.seq, bell.sleepers);
  waiter.join();
  EXPECT_EQ(outcome, WaitOutcome::kReady);
  EXPECT_LT(monotonic_ns() - notified_ns, 5'000 * kMs);
  EXPECT_EQ(bell.sleepers.load(), 0u);
  EXPECT_EQ(bell.seq.load(), 1u);
}

TEST(WaitTest, shouldNotTouchFutexWhenNobodySleeps) {
  Doorbell bell;
  notify(bell.seq, bell.sleepers);
  EXPECT_EQ(bell.seq.load(), 0u);
}

TEST(WaitTest, shouldReturnTimedOutWhenNeverReady) {
  Doorbell bell;
  const int64_t start_ns = monotonic_ns();
  const WaitOutcome outcome = wait_until(bell.seq, bell.sleepers, [] { return false; },
                                         kAlwaysAlive, {1 * kMs, 20 * kMs, 5 * kMs});
  const int64_t elapsed_ns = monotonic_ns() - start_ns;
  EXPECT_EQ(outcome, WaitOutcome::kTimedOut);
  EXPECT_GE(elapsed_ns, 20 * kMs);
  EXPECT_LT(elapsed_ns, 5'000 * kMs);
  EXPECT_EQ(bell.sleepers.load(), 0u);
}

TEST(WaitTest, shouldReturnTimedOutFromSpinWhenTimeoutIsShorterThanSpin) {
  Doorbell bell;
  const WaitOutcome outcome = wait_until(bell.seq, bell.sleepers, [] { return false; },
                                         kAlwaysAlive, {10'000 * kMs, 2 * kMs, 0});
  EXPECT_EQ(outcome, WaitOutcome::kTimedOut);
}

TEST(WaitTest, shouldAbortWithinAboutOneSliceWhenPeerDies) {
  Doorbell bell;
  std::atomic<bool> peer_alive{true};
  std::atomic<int64_t> died_ns{0};
  constexpr int64_t kSliceNs = 10 * kMs;
  WaitOutcome outcome = WaitOutcome::kReady;
  std::thread waiter([&] {
    outcome = wait_until(
        bell.seq, bell.sleepers, [] { return false; }, [&] { return peer_alive.load(); },
        {0, -1, kSliceNs});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  died_ns.store(monotonic_ns());
  peer_alive.store(false);
  waiter.join();
  const int64_t noticed_after_ns = monotonic_ns() - died_ns.load();
  EXPECT_EQ(outcome, WaitOutcome::kAborted);
  // One slice plus scheduling slack (sanitizers and loaded CI machines).
  EXPECT_LT(noticed_after_ns, kSliceNs + 500 * kMs);
}

// Two threads hand a ball back and forth using only wait_until/notify with no
// spinning, so every hand-off goes through the announce/fence/re-check path.
// A lost wake-up would stall one side until its 10 s timeout.
TEST(WaitStressTest, shouldNotLoseWakeupsInSleepOnlyPingPong) {
  constexpr uint64_t kRoundTrips = 100'000;
  constexpr WaitPolicy kSleepOnly{0, 10'000 * kMs, 1'000 * kMs};
  Doorbell to_ping;
  Doorbell to_pong;
  std::atomic<uint64_t> ball{0};  // odd: pong's turn; even: ping's turn
  std::atomic<uint64_t> timeouts{0};

  std::thread pong([&] {
    for (uint64_t i = 0; i < kRoundTrips; ++i) {
      const uint64_t serve = 2 * i + 1;
      const WaitOutcome outcome = wait_until(
          to_pong.seq, to_pong.sleepers,
          [&] { return ball.load(std::memory_order_acquire) == serve; }, kAlwaysAlive, kSleepOnly);
      if (outcome != WaitOutcome::kReady) {
        timeouts.fetch_add(1);
        return;
      }
      ball.store(serve + 1, std::memory_order_release);
      notify(to_ping.seq, to_ping.sleepers);
    }
  });
  const int64_t start_ns = monotonic_ns();
  for (uint64_t i = 0; i < kRoundTrips && timeouts.load() == 0; ++i) {
    const uint64_t returned = 2 * i + 2;
    ball.store(returned - 1, std::memory_order_release);
    notify(to_pong.seq, to_pong.sleepers);
    const WaitOutcome outcome = wait_until(
        to_ping.seq, to_ping.sleepers,
        [&] { return ball.load(std::memory_order_acquire) == returned; }, kAlwaysAlive, kSleepOnly);
    if (outcome != WaitOutcome::kReady) timeouts.fetch_add(1);
  }
  const int64_t elapsed_ns = monotonic_ns() - start_ns;
  pong.join();

  EXPECT_EQ(timeouts.load(), 0u);
  EXPECT_EQ(ball.load(), 2 * kRoundTrips);
  std::printf("[ ring ] sleep-only ping-pong: %llu round trips, %.2f us per round trip\n",
              static_cast<unsigned long long>(kRoundTrips),
              static_cast<double>(elapsed_ns) / 1e3 / static_cast<double>(kRoundTrips));
}

}  // namespace
}  // namespace coproc::ring
