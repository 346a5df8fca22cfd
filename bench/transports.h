// The transports coproc-bench compares, each measured as a ping-pong round
// trip in the same run:
//   shm_floor    two processes bouncing a word through shared memory, both
//                spinning: the machine's floor for any cross-process path.
//   coproc       a real request through coprocd (submit, wait, release).
//   unix_socket  the request's bytes (flatbuffer + input tensor data, which a
//                socket must carry) to an echo server and back.
//   in_process   the model run directly in this process: no transport at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coproc::bench {

struct Budget {
  int64_t warmup_ns = 500'000'000;
  int64_t measure_ns = 2'000'000'000;
  std::size_t max_samples = 200'000;
};

// Each returns the round-trip samples in ns, or sets *error and returns none.
std::vector<int64_t> measure_shm_floor(const Budget& budget, std::string* error);
std::vector<int64_t> measure_unix_socket(std::size_t request_bytes, const Budget& budget,
                                         std::string* error);
// Connects to the daemon at socket_path and runs model_name with every
// dynamic dim set to 1. *request_bytes (optional) receives the bytes a socket
// transport would carry for the same request.
std::vector<int64_t> measure_coproc(const std::string& socket_path, const std::string& model_name,
                                    const Budget& budget, std::size_t* request_bytes,
                                    std::string* error);
std::vector<int64_t> measure_in_process(const std::string& model_path, int cpu_threads,
                                        const Budget& budget, std::string* error);

}  // namespace coproc::bench
