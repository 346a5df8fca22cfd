// The dispatcher's per-model and per-thread state (dispatcher.h), shared by its queue side
// (dispatcher.cc) and its execution side (infer_executor.cc); private to those two files.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "coproc/runtime/model.h"
#include "device/opencl/cl_session.h"
#include "dispatch/dispatcher.h"

namespace coproc::daemon {

// Stats fields are written by one thread each (the poller or the batch
// worker own separate ModelStats blocks), so a counter is bumped with a
// relaxed load and store instead of a locked read-modify-write.
inline void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

struct Dispatcher::ModelState {
  ModelState(const sched::Policy& p, sched::MemoryEstimator estimator)
      : scheduler(p, std::move(estimator)), policy(p) {}
  sched::ModelScheduler scheduler;
  sched::Policy policy;
  std::vector<bool> input_dim1;  // input i has the variable-length dim at 1
  std::vector<bool> output_dim1;
  int length_input = -1;  // first input with the variable-length dim
  // A dynamic dim beyond dim 1 cannot be stacked across requests of different shapes: such a
  // model runs one request per batch, whole.
  bool one_per_batch = false;
  // Every input and output has a dim 0 (the batch), so a row range of a request can run alone.
  bool chunkable = false;
};

// What an executing thread owns: runtime Sessions (plan caches, scratch) and
// staging buffers for gathered inputs and batch outputs.
struct Dispatcher::ThreadState {
  std::vector<std::unique_ptr<runtime::Session>> sessions;
  std::vector<std::unique_ptr<runtime::ClSession>> cl_sessions;  // null for models on the CPU only

  // The session that runs `rows` rows of the model, on the device LoadedModel::on_gpu picks.
  // prepare() and run() are the same on both.
  template <class F>
  auto with_session(const LoadedModel& model, int64_t rows, F&& f) {
    if (model.on_gpu(rows)) return f(*cl_sessions[model.id]);
    return f(*sessions[model.id]);
  }
  std::vector<std::vector<std::byte>> inputs;
  std::vector<std::vector<std::byte>> outputs;
  uint32_t writer = 0;  // which ModelStats block this thread writes
};

}  // namespace coproc::daemon
