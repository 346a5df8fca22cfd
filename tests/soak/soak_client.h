// One client process of coproc-soak, and the books it keeps in memory it
// shares with the soak.
//
// The soak forks every client (and every replacement of a killed one) from
// its only thread. Each process gets its own ClientBook in an anonymous
// MAP_SHARED mapping made before the fork and writes its counters there as it
// goes, so what a client did is still readable after it was SIGKILLed. Every
// field is a lock-free atomic with one writer (the client); the soak reads
// them only after waitpid() returned for that client, which orders the reads
// after every write the client made, so relaxed accesses suffice.
//
// The request mix, per request: 55% the main model at 1 row, 20% at 2 to 8
// rows, 25% the side model (the bundled `noop`, when the daemon serves it) at
// 1 row; priorities 5% critical, 15% high, 50% normal, 30% low; 10% carry a
// deadline 0.2 to 5 ms away (some expire in the queue), 5% are cancelled right
// after they are submitted.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "coproc/segment.h"

namespace coproc::soak {

// Latencies in a log-linear histogram: exact below 32 ns, then 32 buckets per
// power of two (about 3% wide), up to 2^41 ns. A fixed-size histogram instead
// of samples, because a 30-minute soak completes tens of millions of requests.
struct LatencyHistogram {
  static constexpr uint32_t kSubBuckets = 32;
  static constexpr uint32_t kBuckets = 37 * kSubBuckets;
  static uint32_t bucket(uint64_t ns);
  // The middle of bucket `b`'s range, in ns.
  static uint64_t value(uint32_t b);
};

// Open loop: the requests one client can have outstanding (its window).
inline constexpr int kOpenLoopWindow = 32;
// The measured window [measure_from, end) in equal rounds: the capacity run
// takes the median round, so a few seconds of a neighbour's load on a shared
// machine do not set the rate of the whole soak.
inline constexpr int kMeasureRounds = 5;

struct ClientBook {
  // coproc_submit calls, counted before each call; of those, the ones the
  // library took (the request went on the ring) and the ones it refused.
  // attempted - submitted - refused is 1 only for a client killed inside
  // coproc_submit.
  std::atomic<uint64_t> attempted;
  std::atomic<uint64_t> submitted;
  std::atomic<uint64_t> refused;
  // Outcomes, by coproc_status (the daemon's statuses are 0..10).
  std::atomic<uint64_t> ended[wire::kStatusCount];
  // Outcomes in the measured window [measure_from, end), and by round.
  std::atomic<uint64_t> measured_ended;
  std::atomic<uint64_t> round_ended[kMeasureRounds];
  // Violations: an outcome that is not a daemon status or is not one this
  // mix can produce, an outcome that changed after it was read, an output
  // that is not the answer to its own request, and (at the end) requests
  // still in flight after the drain timeout.
  std::atomic<uint64_t> unexpected;
  std::atomic<int32_t> last_unexpected_status;
  std::atomic<uint64_t> wrong_outputs;
  std::atomic<uint64_t> lost;
  std::atomic<uint64_t> cancels_sent;
  std::atomic<uint64_t> deadlines_set;
  // Open loop: arrivals that found every slot of the client's window busy
  // (not submitted; the offered load was not met).
  std::atomic<uint64_t> backlogged;
  // OK requests that arrived after measure_from: latency from the scheduled
  // arrival (open loop) or the submit (closed loop) to the completion.
  std::atomic<int64_t> max_latency_ns;
  std::atomic<uint64_t> latency[LatencyHistogram::kBuckets];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free &&
              std::atomic<int32_t>::is_always_lock_free);

struct ClientPlan {
  std::string socket_path;
  std::string model_name;       // the main model
  std::string side_model_name;  // an identity model; empty: main model only
  bool open_loop = true;
  int in_flight = 4;     // closed loop: outstanding requests
  double rate_rps = 0;   // open loop: this client's Poisson arrival rate
  int64_t start_ns = 0;  // CLOCK_MONOTONIC (coproc_now_ns)
  int64_t measure_from_ns = 0;
  int64_t end_ns = 0;
  uint64_t seed = 1;
};

// Exit codes of a client process other than 0.
enum ClientExit : int {
  kClientConnectFailed = 10,
  kClientModelMissing = 11,
  kClientAllocFailed = 12,
  kClientDaemonGone = 13,
};

// Runs one client until plan.end_ns, then waits for what it still has in
// flight (up to 10 s; what is left counts as lost) and disconnects. Returns
// the process's exit code.
int run_soak_client(const ClientPlan& plan, ClientBook* book);

}  // namespace coproc::soak
