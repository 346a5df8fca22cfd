// Spin-then-sleep waiting on a futex word in shared memory, and the wake
// protocol between one notifier and its waiters.
//
// Two words, which may live in different shared segments:
//   seq       the futex word. Notifiers bump it before waking, so a waiter that
//             read it before the bump sees FUTEX_WAIT fail with EAGAIN instead
//             of sleeping through the wake.
//   sleepers  how many waiters announced that they are about to sleep. A
//             notifier skips the syscall when it reads 0.
// The futex calls are the shared (non-_PRIVATE) variants: the words are mapped
// by several processes, and the kernel must key them by the backing page.
//
// Invariants:
//   W1  No lost wake-up. Waiter: (a) sleepers += 1, (b) seq_cst fence,
//       (c) s = seq, (d) re-check ready(), (e) FUTEX_WAIT(seq, s).
//       Notifier: (1) publish the work with a release store, (2) seq_cst
//       fence, (3) read sleepers, (4) if non-zero: seq += 1 and FUTEX_WAKE.
//       The two fences are ordered one way or the other in the single total
//       order of seq_cst operations. If the waiter's fence comes first, (3)
//       reads the increment from (a) and the notifier wakes; if the
//       notifier's fence comes first, (d) sees the work from (1) and the
//       waiter does not sleep. In the first case, if (c) read seq before the
//       notifier's bump, the kernel compares seq with s under its bucket lock
//       and returns EAGAIN; else (c) synchronises with the bump (acquire /
//       release), so (d) already sees the work. Either way nobody sleeps on
//       published work.
//   W2  Waking is a hint, never a message: after every return from FUTEX_WAIT
//       (woken, EAGAIN, timeout, signal, or a peer bumping seq for no reason)
//       the waiter re-checks ready(). A hostile peer that writes seq or
//       sleepers can cause spurious wake-ups or extra syscalls, nothing more.
//   W3  A waiter never sleeps longer than slice_ns at a time, so alive() is
//       polled at least that often and a dead peer is noticed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>

namespace coproc::ring {

static_assert(std::atomic<uint32_t>::is_always_lock_free,
              "futex words are shared between processes");
static_assert(sizeof(std::atomic<uint32_t>) == 4, "a futex word is exactly 32 bits");

enum class FutexResult { kWoken, kValueChanged, kTimedOut, kInterrupted };

// FUTEX_WAIT on word while it holds `expected`; timeout_ns < 0 waits forever.
// kWoken may be spurious: callers re-check their condition. Aborts on a bad
// address (EFAULT) or argument (EINVAL), which are programmer errors.
FutexResult futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns);
void futex_wake_all(std::atomic<uint32_t>* word);
int64_t monotonic_ns();  // CLOCK_MONOTONIC, in nanoseconds

// A pause hint for spin loops: lowers power and the cost of leaving the loop
// on x86 (and yields the pipeline to the sibling hyper-thread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

namespace detail {

// ThreadSanitizer does not model standalone fences (GCC warns with -Wtsan).
// The fence here orders only atomics against atomics for W1: every plain
// access is ordered by the release/acquire pairs of the data it guards, which
// TSan does see. So the fence stays in TSan builds and the warning is muted.
inline void seq_cst_fence() {
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

// The spin loop reads the clock once per this many pauses: a pause is 10 to
// 150 cycles depending on the core, a vDSO clock read about 20 ns.
inline constexpr uint32_t kSpinIterationsPerClockRead = 16;

}  // namespace detail

// Called after the work was published with a release store (W1, notifier
// side). When nobody sleeps this costs one fence and one relaxed load.
inline void notify(std::atomic<uint32_t>& seq, const std::atomic<uint32_t>& sleepers) {
  // seq_cst fence: pairs with the waiter's fence in wait_until() (W1), so
  // either the load below sees its announcement or it sees our work.
  detail::seq_cst_fence();
  // relaxed: ordered after the publish by the fence above.
  if (sleepers.load(std::memory_order_relaxed) != 0) {
    // release: a waiter whose acquire load of seq reads this bump also sees
    // the work published before it (W1, second case).
    seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&seq);
  }
}

enum class WaitOutcome { kReady, kTimedOut, kAborted };

struct WaitPolicy {
  int64_t spin_ns;     // how long to spin on ready() before sleeping; 0: sleep at once
  int64_t timeout_ns;  // how long to wait in all; < 0: forever
  int64_t slice_ns;    // longest single futex sleep, so alive() is polled at least this often;
                       // <= 0: no limit
};

// Waits until ready() is true (kReady), alive() is false (kAborted, checked
// after each sleep) or timeout_ns has passed (kTimedOut). ready() must read the
// published work with acquire loads; both predicates must be cheap and must
// not block. `sleepers` is written only by waiters on this doorbell.
template <class Ready, class Alive>
WaitOutcome wait_until(std::atomic<uint32_t>& seq, std::atomic<uint32_t>& sleepers, Ready&& ready,
                       Alive&& alive, WaitPolicy p) {
  if (ready()) return WaitOutcome::kReady;
  constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  const int64_t start_ns = monotonic_ns();
  const int64_t deadline_ns =
      p.timeout_ns < 0 || p.timeout_ns > kForever - start_ns ? kForever : start_ns + p.timeout_ns;
  const int64_t spin_end_ns = start_ns + std::clamp<int64_t>(p.spin_ns, 0, deadline_ns - start_ns);
  if (p.spin_ns > 0) {
    for (uint32_t i = 1;; ++i) {
      cpu_relax();
      if (ready()) return WaitOutcome::kReady;
      if (i % detail::kSpinIterationsPerClockRead == 0 && monotonic_ns() >= spin_end_ns) break;
    }
  }
  for (;;) {
    // relaxed: the announcement is ordered before the re-check by the fence.
    sleepers.fetch_add(1, std::memory_order_relaxed);
    // seq_cst fence: pairs with the notifier's fence in notify() (W1).
    detail::seq_cst_fence();
    // acquire: pairs with the release bump in notify(), see W1.
    const uint32_t s = seq.load(std::memory_order_acquire);
    if (ready()) {
      sleepers.fetch_sub(1, std::memory_order_relaxed);  // relaxed: only a hint for notifiers
      return WaitOutcome::kReady;
    }
    const int64_t remaining_ns = deadline_ns - monotonic_ns();
    if (remaining_ns <= 0) {
      sleepers.fetch_sub(1, std::memory_order_relaxed);  // relaxed: only a hint for notifiers
      return WaitOutcome::kTimedOut;
    }
    int64_t sleep_ns = p.timeout_ns < 0 ? -1 : remaining_ns;
    if (p.slice_ns > 0 && (sleep_ns < 0 || p.slice_ns < sleep_ns)) sleep_ns = p.slice_ns;
    futex_wait(&seq, s, sleep_ns);                     // every outcome is re-checked below (W2)
    sleepers.fetch_sub(1, std::memory_order_relaxed);  // relaxed: only a hint for notifiers
    if (ready()) return WaitOutcome::kReady;
    if (!alive()) return WaitOutcome::kAborted;
    if (monotonic_ns() >= deadline_ns) return WaitOutcome::kTimedOut;
  }
}

}  // namespace coproc::ring
