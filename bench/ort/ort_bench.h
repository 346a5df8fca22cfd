// coproc-bench ort: coproc against ONNX Runtime on the same ONNX file, in one run.
//
// Latency mode (ort_latency.cc): coproc's runtime in this process and ORT in its worker process
// (tools/ort_worker.py, timing each call in-process), per batch size, taking turns round by round
// so that machine noise hits both alike; never both at once. Outputs are compared first.
//
// Throughput mode (ort_throughput.cc, --processes N): N client processes against a private
// coprocd with batching on, then N ORT worker processes each running the model itself on one
// thread, for the same duration on the same inputs.
//
// Inputs follow inputs.h (first dynamic dim = batch, second = seq); coproc-bench writes the bytes
// it gives its own runtime to files the ORT worker reads, so both run on identical tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/inputs.h"
#include "coproc/base/json_text.h"
#include "coproc/runtime/model.h"

namespace coproc::bench {

class OrtProcess;

struct OrtBenchOptions {
  std::string model_path;
  std::string python;         // interpreter for the worker
  std::string worker_script;  // tools/ort_worker.py
  bool json = false;
  int threads = 1;    // latency mode: ORT intra_op = inter_op, coproc intra_op_threads
  int64_t seq = 128;  // the second dynamic dim
  int64_t warmup_ns = 500'000'000;
  // Latency mode.
  std::vector<int64_t> batches{1, 32};
  int rounds = 5;
  int64_t iterations = 1000;         // a round's cap on calls, per side
  int64_t round_ns = 1'000'000'000;  // a round's cap on time, per side (at least one call)
  // Throughput mode (processes > 0).
  int processes = 0;
  int64_t duration_ns = 3'000'000'000;  // measured time of each phase
  int max_batch = 32;                   // the daemon's batching policy
  int daemon_threads = 1;               // the daemon's executor.intra_op_threads
};

int run_ort_latency(const OrtBenchOptions& options);
int run_ort_throughput(const OrtBenchOptions& options);

// ---------------------------------------------------------------- shared by the two modes

// Exit code when the outputs of coproc and ORT disagree (the numbers are still printed).
inline constexpr int kExitOutputsDisagree = 3;

// A temporary directory, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One input tensor made by the rule of inputs.h.
struct InputTensor {
  std::string name;
  runtime::DType dtype;
  std::vector<int64_t> dims;
  std::vector<std::byte> bytes;
};

std::vector<InputTensor> make_inputs(const runtime::Model& model, const ShapeRule& rule);
// "input_ids[32, 128], attention_mask[32, 128]"
std::string shapes_text(const std::vector<InputTensor>& inputs);
// Writes input i to dir/<prefix>.in<i>.raw, raw and dense, for ORT workers to read.
bool write_inputs(const std::vector<InputTensor>& inputs, const std::string& dir,
                  const std::string& prefix, std::string* error);
// Tells the worker to read the inputs write_inputs() wrote.
bool send_inputs(OrtProcess& worker, const std::vector<InputTensor>& inputs, const std::string& dir,
                 const std::string& prefix, std::string* error);
// True when some input has a seq dim (see inputs.h).
bool model_has_seq(const runtime::Model& model);

// "AMD EPYC, 2 cores" and the JSON fields for the same.
std::string machine_text();
std::string machine_json();

std::string fmt_us(int64_t ns);

}  // namespace coproc::bench
