// ONNX Runtime in a child process: tools/ort_worker.py, spoken to over two pipes.
//
// There are no ONNX Runtime C/C++ headers on the project's machines (the PyPI wheel ships the
// library only), so coproc-bench runs ORT through its Python binding in a child and lets the child
// time each call in-process; the pipes carry requests and sample lists, never a timed call. The
// protocol (one TAB-separated line each way) is documented in tools/ort_worker.py.
//
// Errors: every method returns false (or nullopt) on failure and error() says why: the worker's
// own message (a Python exception, e.g. ORT refusing the model) or a dead pipe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace coproc::bench {

// An output as ORT produced it.
struct OrtOutput {
  std::string dtype;  // numpy name: "float32", "int64", ...
  std::vector<int64_t> dims;
};

// The fixed cost of one timed call through the worker's path: ORT running an Identity model on one
// float (binding, ORT's own per-run work, the timer), and the timer pair alone.
struct OrtCallOverhead {
  int64_t identity_p50_ns = 0;
  int64_t identity_p99_ns = 0;
  int64_t timer_p50_ns = 0;
};

class OrtProcess {
 public:
  // Starts `python worker_script` with OpenBLAS/OpenMP pools of numpy limited to one thread (ORT's
  // own pools follow the session options). The child's stderr is ours.
  OrtProcess(const std::string& python, const std::string& worker_script);
  ~OrtProcess();  // asks the worker to quit, then reaps it
  OrtProcess(const OrtProcess&) = delete;
  OrtProcess& operator=(const OrtProcess&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // The session: intra_op = inter_op = threads, sequential, graph optimisation ALL.
  // *version: ORT's version string.
  bool load(const std::string& model_path, int threads, std::string* version);
  // Input `name` from the raw dense file `path` (dtype as numpy names it).
  bool set_input(const std::string& name, const std::string& dtype,
                 const std::vector<int64_t>& dims, const std::string& path);
  // Runs once, writes output j to dir/ort.out<j>.raw, and binds buffers of those shapes for the
  // timed calls that follow.
  std::optional<std::vector<OrtOutput>> write_outputs(const std::string& dir);
  // Per-call latencies: until `iterations` calls or `max_ns` elapsed, at least one call.
  std::optional<std::vector<int64_t>> run(int64_t iterations, int64_t max_ns);
  std::optional<OrtCallOverhead> overhead(int64_t iterations);

  // Closed loop from start_ns (CLOCK_MONOTONIC): send_loop() returns at once so that many workers
  // start together; receive_loop() waits for the samples (calls that started after the warm-up
  // and ended before the end).
  bool send_loop(int64_t start_ns, int64_t warmup_ns, int64_t duration_ns);
  std::optional<std::vector<int64_t>> receive_loop();

 private:
  bool send(std::initializer_list<std::string> fields);
  // The reply's fields after "ok".
  std::optional<std::vector<std::string>> receive();
  std::optional<std::vector<std::string>> call(std::initializer_list<std::string> fields);
  std::optional<std::vector<int64_t>> parse_samples(
      const std::optional<std::vector<std::string>>& reply);
  bool fail(std::string message);

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;  // read from the child, not yet consumed
  std::string error_;
};

}  // namespace coproc::bench
