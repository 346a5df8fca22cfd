// coproc's runtime on one set of inputs in this process, for `coproc-bench ort`: the timed side
// of the latency mode, and the reference the throughput mode checks ORT's answer against.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coproc/runtime/device.h"
#include "coproc/runtime/model.h"
#include "ort/ort_bench.h"
#include "ort/ort_process.h"

namespace coproc::bench {

// How far ORT's outputs are from coproc's. agree: every element has
// |coproc - ort| <= kAbsTolerance + kRelTolerance * |ort| (numpy.allclose's rule).
struct Agreement {
  double max_abs_diff = 0;
  double ort_max_abs = 0;
  bool agree = true;
};

// float32 kernels that sum in another order differ in the last bits; a wrong kernel differs by
// far more.
inline constexpr double kAbsTolerance = 1e-4;
inline constexpr double kRelTolerance = 1e-3;

class CoprocRunner {
 public:
  // Prepares the plan for these inputs (shapes, and values for a model whose input values set
  // shapes inside it) and the output buffers. `inputs` must outlive the runner.
  CoprocRunner(std::shared_ptr<const runtime::Model> model, const std::vector<InputTensor>& inputs);
  CoprocRunner(const CoprocRunner&) = delete;
  CoprocRunner& operator=(const CoprocRunner&) = delete;

  // Non-empty once something failed.
  const std::string& error() const { return error_; }
  bool run();
  // Per-call latencies: until `iterations` calls or `max_ns` elapsed, at least one call; empty on
  // failure.
  std::vector<int64_t> time(int64_t iterations, int64_t max_ns);
  // Our outputs (of the last run) against the worker's files dir/ort.out<j>.raw, described by
  // `ort`. nullopt (and error()) when they cannot be compared: another count, shape or dtype.
  std::optional<Agreement> compare(const std::vector<OrtOutput>& ort, const std::string& dir);

 private:
  std::unique_ptr<runtime::Session> session_;
  const runtime::Plan* plan_ = nullptr;
  std::vector<const void*> in_;
  std::vector<std::vector<std::byte>> out_;
  std::vector<void*> out_ptrs_;
  std::string error_;
};

}  // namespace coproc::bench
