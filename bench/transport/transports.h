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
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/inputs.h"
#include "coproc.h"

namespace coproc::bench {

struct Budget {
  int64_t warmup_ns = 500'000'000;
  int64_t measure_ns = 2'000'000'000;  // per transport, spread over the rounds
  std::size_t max_samples = 200'000;   // per transport
  int rounds = 10;  // transports take turns, so drift (frequency, neighbours) hits all alike
};

// One way of doing a round trip. Construction sets it up (forks a peer,
// connects, loads a model); round_trip() does one and returns false on error.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  virtual bool round_trip() = 0;
  // Around each turn: a transport whose peer spins parks it while the others
  // are measured (a third spinner on two cores would skew them), and wakes it
  // with one unmeasured round trip before its own turn.
  // Execution times the daemon reported (coproc only; includes warm-up).
  virtual std::vector<int64_t> daemon_exec_ns() const { return {}; }
  virtual void park() {}
  virtual bool unpark() { return true; }
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

 protected:
  std::string error_;
};

// Allocates arena tensors for every input (or output) of `model`, shaped and
// (inputs) filled by the rule in inputs.h: dynamic dims set to rule.batch and
// rule.seq, 1 by default. false: see coproc_last_error().
bool alloc_model_tensors(coproc_client* client, const coproc_model* model, bool input,
                         coproc_tensor* out, std::size_t n, const ShapeRule& rule = {});

std::unique_ptr<Transport> make_shm_floor();
std::unique_ptr<Transport> make_unix_socket(std::size_t request_bytes);
// Runs model_name (every dynamic dim set to 1) through the daemon at
// socket_path. request_bytes() is what a socket transport would carry for
// the same request: an equivalent Request flatbuffer plus the input data.
std::unique_ptr<Transport> make_coproc(const std::string& socket_path,
                                       const std::string& model_name, std::size_t* request_bytes);
std::unique_ptr<Transport> make_in_process(const std::string& model_path, int cpu_threads);

// Warms every transport up, then measures them in turns; returns one sample
// vector per transport (empty where a round trip failed).
std::vector<std::vector<int64_t>> measure_interleaved(std::span<Transport* const> transports,
                                                      const Budget& budget);

}  // namespace coproc::bench
