// What coproc-soak watches of the daemon, without disturbing it: its
// books (the per-model counters in its registry, which the daemon writes and
// everyone else maps read-only) and what /proc says about its memory,
// descriptors and mappings.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "coproc/segment.h"
#include "registry_view.h"

namespace coproc::soak {

// One model's counters at one moment (each counter is read once; two of them
// may be from slightly different moments while the daemon works, which is
// why the books are checked once it is idle).
struct ModelBooks {
  std::string name;
  uint64_t accepted = 0;
  uint64_t rejected_queue_full = 0;
  uint64_t rejected_invalid = 0;
  uint64_t completed[wire::kStatusCount] = {};
  uint64_t expired = 0;
  uint64_t cancelled = 0;
  uint64_t dropped_client_gone = 0;
  uint64_t queued = 0;  // queue depth, every priority

  // Requests the daemon read off a ring, and the ones it finished with.
  uint64_t received() const { return accepted + rejected_queue_full + rejected_invalid; }
  uint64_t completed_total() const;
  uint64_t answered() const { return completed_total() + dropped_client_gone; }
  // `this` minus an earlier reading of the same model.
  ModelBooks since(const ModelBooks& earlier) const;
};

// The daemon process as /proc shows it. -1: not readable (another user's
// daemon needs ptrace rights for fd/ and maps).
struct ProcSample {
  bool alive = false;
  int64_t rss_kb = -1;  // VmRSS = RssAnon + RssFile + RssShmem
  int64_t rss_anon_kb = -1;
  int64_t rss_file_kb = -1;
  int64_t rss_shmem_kb = -1;  // mostly client segment pages the daemon has touched
  int64_t fds = -1;
  int64_t maps = -1;
};

class DaemonWatch {
 public:
  DaemonWatch() = default;
  DaemonWatch(const DaemonWatch&) = delete;
  DaemonWatch& operator=(const DaemonWatch&) = delete;

  // Says hello on `socket_path` as an observer, keeps a read-only mapping of
  // the registry and closes everything else at once, so the daemon reclaims
  // the connection and carries no client for us. false: see error().
  bool open(const std::string& socket_path);
  const std::string& error() const { return error_; }

  pid_t pid() const { return pid_; }
  // Every model's books, in model-table order.
  std::vector<ModelBooks> books() const;
  ProcSample sample() const;

 private:
  observer::RegistryView view_;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace coproc::soak
