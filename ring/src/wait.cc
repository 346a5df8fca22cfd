// The futex and clock system calls behind wait.h. The wake protocol and its
// invariants are documented there.
#include "coproc/ring/wait.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace coproc::ring {

namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;

// The kernel reads the word as a plain u32 at this address; std::atomic<uint32_t>
// is lock-free and exactly 4 bytes (asserted in wait.h), so it has that layout.
uint32_t* futex_address(std::atomic<uint32_t>* word) { return reinterpret_cast<uint32_t*>(word); }

[[noreturn]] void die_errno(const char* what, int err) {
  std::fprintf(stderr, "coproc::ring: %s failed: errno %d\n", what, err);
  std::abort();
}

}  // namespace

FutexResult futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns) {
  timespec relative{};
  timespec* timeout = nullptr;
  if (timeout_ns >= 0) {
    relative.tv_sec = static_cast<time_t>(timeout_ns / kNsPerSecond);
    relative.tv_nsec = static_cast<long>(timeout_ns % kNsPerSecond);
    timeout = &relative;
  }
  // FUTEX_WAIT (not _PRIVATE): the word is shared between processes. Its
  // timeout is relative and measured against CLOCK_MONOTONIC.
  if (syscall(SYS_futex, futex_address(word), FUTEX_WAIT, expected, timeout, nullptr, 0) == 0) {
    return FutexResult::kWoken;
  }
  const int err = errno;
  switch (err) {
    case EAGAIN:
      return FutexResult::kValueChanged;
    case ETIMEDOUT:
      return FutexResult::kTimedOut;
    case EINTR:
      return FutexResult::kInterrupted;
    default:
      die_errno("FUTEX_WAIT", err);
  }
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  if (syscall(SYS_futex, futex_address(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0) < 0) {
    die_errno("FUTEX_WAKE", errno);
  }
}

int64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * kNsPerSecond + now.tv_nsec;
}

}  // namespace coproc::ring
