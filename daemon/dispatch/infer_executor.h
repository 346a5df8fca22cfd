// The executor of ONNX inference models (executor.h): runs a request alone in place on its
// client's arena, or a batch gathered into staging buffers (batch_io.h), on the device the model
// picks for the batch's rows (LoadedModel::on_gpu: the CPU, or the OpenCL device with pinned
// staging). Every use of the runtime's sessions, plans and devices in the daemon is in this
// executor and batch_io, so a change to the runtime's device interface lands here alone.
//
// Layout rules (batch_io.h): dim 0 of every input and output is the batch dim; a model may have
// one variable-length dim, at dim 1 of the inputs where it is dynamic, padded with zeros to the
// batch's length and cropped back per request in the outputs where it is dynamic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dispatch/executor.h"

namespace coproc::daemon {

class ModelSet;

// Plans each executing thread keeps per model (least recently used dropped):
// one per batch size and padded length in practice, so a client cycling
// through shapes cannot grow the daemon without bound.
inline constexpr std::size_t kMaxPlansPerSession = 256;

class InferExecutor final : public Executor {
 public:
  // Serves every model of `models` (all are inference models). request_memory_bytes
  // (limits.request_memory): the most one run may use (inputs, outputs and scratch); a run over
  // it fails RESOURCE_EXHAUSTED, and a batch over it runs request by request.
  InferExecutor(const ModelSet& models, uint64_t request_memory_bytes);
  ~InferExecutor() override;

  BatchTraits traits(const LoadedModel& model) const override;
  sched::MemoryEstimator memory_estimator(const LoadedModel& model) const override;
  std::unique_ptr<Thread> make_thread() const override;
  RunEnd run_one(WorkItem& item, Thread& thread, Answers& answers) const override;
  RunEnd run_batch(const BatchRun& batch, Thread& thread, Answers& answers) const override;

 private:
  class InferThread;
  // A model's tensors as batching sees them, fixed at load.
  struct Layout {
    std::vector<bool> input_dim1;  // input i has the variable-length dim at dim 1
    std::vector<bool> output_dim1;
    BatchTraits traits;
  };

  const ModelSet& models_;
  const uint64_t request_memory_bytes_;
  std::vector<Layout> layouts_;  // by model id
};

}  // namespace coproc::daemon
