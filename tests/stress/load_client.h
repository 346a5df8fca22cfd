// A client process that keeps a daemon busy and checks every answer: the
// "survivor" of the stress tests. It sends noop and mlp requests, each with
// inputs of its own (a noop request carries its sequence number, an mlp
// request one of the 32 reference rows), so a result delivered to the wrong
// request or written twice shows up as wrong numbers. Every request must come
// back exactly once, COPROC_OK, with the right numbers.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace coproc::test {

// Written by the client process, read by the test (shared memory).
struct LoadReport {
  std::atomic<int> connected{0};
  std::atomic<uint64_t> submitted{0};
  std::atomic<uint64_t> completed_ok{0};  // status OK and the right numbers
  std::atomic<uint64_t> wrong{0};         // OK but wrong numbers
  std::atomic<uint64_t> failed{0};        // any other status, or no answer within kAnswerTimeout
  std::atomic<uint64_t> batched{0};       // completions that ran in a batch of more than one row
  std::atomic<uint64_t> max_latency_ns{0};
  // Resettable by the test (exchange with 0) to look at one stretch of time.
  std::atomic<uint64_t> window_max_latency_ns{0};
  char first_error[256] = {};
};

struct LoadOptions {
  std::string socket;
  uint32_t seed = 1;
  int in_flight = 4;          // requests outstanding at most
  double open_loop_rate = 0;  // arrivals per second (Poisson); 0: closed loop
  bool mlp_only = false;
  const std::atomic<int>* stop = nullptr;  // set by the test: finish what is in flight, exit
};

// Runs until *stop, then waits for what is in flight. The exit code is 0 when
// every request came back exactly once and right.
int run_load_client(const LoadOptions& options, LoadReport* report);

}  // namespace coproc::test
