// Helpers for the stress tests: a coprocd on a socket path of the test's
// choosing (so a second daemon can take over the first one's path), counters
// that child processes share with the test, what /proc says about the daemon,
// and the daemon's books from its registry.
//
// The test process forks its clients from its only thread, so a child never
// inherits a lock some other thread held; children end with _exit and report
// through shared memory and their exit code, never through gtest.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <new>
#include <string>
#include <vector>

namespace coproc::test {

using Clock = std::chrono::steady_clock;

// A coprocd on `socket_path` with `args` (models, config). Unlike
// DaemonProcess the path is the caller's: the restart test starts a second
// daemon where the first one died.
class StressDaemon {
 public:
  StressDaemon(std::string socket_path, std::vector<std::string> args);
  ~StressDaemon();
  StressDaemon(const StressDaemon&) = delete;
  StressDaemon& operator=(const StressDaemon&) = delete;

  // Forks and execs coprocd; waits up to 30 s until the socket accepts.
  bool start();
  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_path_; }
  std::string log() const;
  // The end of the log: a storm's log has a few lines per client.
  std::string log_tail(std::size_t bytes = 6000) const;
  // SIGKILL and reap.
  void kill_now();
  // SIGTERM (drain and exit); the raw wait status, or -1 if it did not exit
  // within timeout_ms.
  int terminate(int timeout_ms);
  // SIGSTOP, then waits until every thread of the daemon is stopped.
  bool stop_and_wait(int timeout_ms) const;
  // True while the process has not exited.
  bool alive();

 private:
  std::string socket_path_;
  std::vector<std::string> args_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// A private directory under /tmp for sockets, logs and configs; removed with
// everything in it when the test ends.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A TOML config file with the noop and mlp models under `keys` (batching
// policy lines shared by both), written into `dir`.
std::string write_two_model_config(const TempDir& dir, const std::string& noop_keys,
                                   const std::string& mlp_keys);

// Anonymous MAP_SHARED memory: forked children write into the same pages.
void* map_shared(std::size_t bytes);
void unmap_shared(void* p, std::size_t bytes);

// An array of T in memory shared with forked children: T is built of
// lock-free atomics, so the test and its children may both touch it.
template <class T>
class Shared {
 public:
  explicit Shared(std::size_t n = 1) : n_(n), data_(static_cast<T*>(map_shared(sizeof(T) * n))) {
    for (std::size_t i = 0; i < n_; ++i) new (&data_[i]) T();
  }
  ~Shared() { unmap_shared(data_, sizeof(T) * n_); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T& operator[](std::size_t i) const { return data_[i]; }
  T* operator->() const { return data_; }
  std::size_t size() const { return n_; }

 private:
  std::size_t n_;
  T* data_;
};

// Forks a child that runs body() and _exits with its result.
pid_t spawn(const std::function<int()>& body);
// Waits up to timeout_ms for pid; kills it on timeout. Returns its exit code,
// 128 + signal when a signal ended it, or -1 on timeout.
int reap(pid_t pid, int timeout_ms);

// From /proc/<pid>: open descriptors, resident set (VmRSS) in KiB.
int count_fds(pid_t pid);
long rss_kib(pid_t pid);

// Polls `done` every 10 ms for up to timeout_ms; returns its last value.
bool eventually(const std::function<bool()>& done, int timeout_ms);

// The daemon's books, summed over models and writer threads (docs/operating.md, "The stats
// page").
struct Books {
  uint64_t accepted = 0;
  uint64_t rejected = 0;   // queue full + invalid
  uint64_t completed = 0;  // every status
  uint64_t completed_ok = 0;
  uint64_t dropped_client_gone = 0;
  uint64_t batches = 0;
  uint64_t batch_rows = 0;
  bool balanced() const { return accepted + rejected == completed + dropped_client_gone; }
  std::string describe() const;
};
// Reads them through a raw connection's registry mapping; false if the
// daemon does not answer.
bool read_books(const std::string& socket_path, Books* out);

int64_t now_ns();

}  // namespace coproc::test
