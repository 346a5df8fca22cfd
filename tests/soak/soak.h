// coproc-soak: a long run of mixed load with client processes killed
// along the way, checking that nothing is lost and nothing leaks.
//
//   1. Capacity: N client processes run the request mix (soak_client.h) in a
//      closed loop for 5 s; the median completion rate of its five 1-s
//      rounds is the capacity.
//   2. Baseline: once the daemon is idle again, its descriptor and mapping
//      counts and its books.
//   3. Soak: the same N processes in an open loop (Poisson arrivals) at
//      `load` x capacity for the whole duration. Every kill_every (at a random
//      moment: the gaps are uniform in [0.5, 1.5] x kill_every) one of the
//      victim processes (the second half of the N) is SIGKILLed and a fresh
//      one takes its place; the first half is never killed. Once a second
//      the daemon's VmRSS (and its parts), descriptors and mappings are read
//      from /proc.
//   4. Checks, once every client has finished and the daemon is idle:
//      - no lost requests: every request a never-killed client submitted
//        ended exactly once, with an outcome the mix can produce, and every
//        identity-model answer carried its own request's tag;
//      - the daemon's books balance, per model: accepted + rejected ==
//        completed + dropped, nothing queued;
//      - the daemon read what the clients sent: at least what the surviving
//        clients submitted plus what the killed ones saw answered, at most
//        everything any client put on a ring;
//      - resident memory flat after warm-up: (max - min) / min <= 1% of the
//        daemon's own resident memory, VmRSS - RssShmem (RssShmem is the live
//        clients' segment pages, which come and go with the kills; VmRSS is
//        reported too);
//      - client segment pages (RssShmem), descriptors and mappings back to
//        the baseline;
//      - the daemon stayed up, and (with kills on) clients were killed.
#pragma once

#include <cstdint>
#include <string>

namespace coproc::soak {

struct SoakOptions {
  std::string socket_path;      // the daemon under test
  std::string model_name;       // the main model
  std::string side_model_name;  // an identity model mixed in when served; empty: none
  int clients = 8;
  double load = 0.7;  // of the measured capacity
  int64_t duration_ns = 120'000'000'000;
  int64_t kill_every_ns = 2'000'000'000;  // 0: no kills
  int64_t warmup_ns = -1;                 // < 0: 20% of the duration, at least 10 s
  int64_t capacity_ns = 5'000'000'000;
  double max_rss_drift = 0.01;
  uint64_t seed = 1;
  bool json = false;
};

// Runs the soak and prints its summary (or one JSON object). Returns the exit
// code: 0 when every check held, 1 when one failed or the run could not be
// made.
int run_soak(const SoakOptions& options);

}  // namespace coproc::soak
