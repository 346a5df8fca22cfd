// coproc-bench load: many client processes against one daemon.
//
// Each client is a real process (fork) with its own connection. Closed loop:
// it keeps `in_flight` requests outstanding and resubmits as each completes.
// Open loop: requests arrive as a Poisson process at `rate_rps` (all clients
// together) and latency is measured from the scheduled arrival, so queueing
// delay shows instead of being hidden by a slow client (no coordinated
// omission). Priorities are drawn per request from a mix.
//
// A heavy neighbour (heavy_rows > 0) is one more client process that keeps one
// request of heavy_rows rows (dim 0) at heavy_priority in flight the whole
// run: what the others' latencies look like next to one big request (which a
// daemon runs in chunks of its model's max_batch rows). Its own completions are
// reported apart and not counted in the throughput.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/inputs.h"

namespace coproc::bench {

struct LoadOptions {
  std::string socket_path;
  std::string model_name;
  int clients = 8;
  int in_flight = 1;    // closed loop: outstanding requests per client
  double rate_rps = 0;  // > 0: open loop at this total arrival rate
  int64_t warmup_ns = 500'000'000;
  int64_t duration_ns = 3'000'000'000;
  std::array<double, 4> priority_mix{0, 0, 1, 0};  // critical, high, normal, low weights
  uint64_t seed = 1;
  ShapeRule shape;             // each request's dynamic dims (inputs.h): batch 1, seq 1 by default
  int64_t heavy_rows = 0;      // > 0: add the heavy neighbour
  uint8_t heavy_priority = 3;  // coproc_priority of its requests: low by default
};

// One completed request, as a client saw it.
struct LoadSample {
  int64_t latency_ns;
  uint64_t queue_ns;
  uint64_t exec_ns;
  uint32_t batch_size;
  uint8_t priority;
  uint8_t status;  // coproc_status, 0 = OK
};

struct LoadResult {
  std::vector<LoadSample> samples;        // measured phase only, every client
  std::vector<LoadSample> heavy_samples;  // the heavy neighbour's, measured phase only
  int64_t measured_ns = 0;
  uint64_t errors = 0;
  uint64_t backlogged = 0;  // open loop: arrivals that found the client's window full
  std::string error;        // non-empty: the run failed
};

LoadResult run_load(const LoadOptions& options);

}  // namespace coproc::bench
