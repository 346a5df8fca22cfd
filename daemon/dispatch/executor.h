// The seam between the dispatcher and what runs a model. The dispatcher forms batches and answers
// requests; an Executor runs them, with one implementation per kind of model (InferExecutor for
// ONNX inference models). The dispatcher names no runtime type: sessions, plans, devices and
// staging buffers live behind this interface.
//
// Contract:
//  - An executor is shared by every thread that runs batches (the poller's inline fast path and
//    the batch worker). Its run methods are const; whatever a run changes (plan caches, staging)
//    lives in the Executor::Thread it made for the calling thread, which only that thread uses.
//  - Items reach an executor fully checked against their model (ingest/request.h) and with a
//    live client; the executor does not check client data again. It checks what only a run can
//    tell: that the outputs the plan computes fit where the request said (output_bytes).
//  - Every item of a run is reported exactly once: Answers::ok when its outputs are written,
//    Answers::fail when it alone failed, or, for the whole run, the RunEnd returned. The
//    executor never writes a completion or a counter: the dispatcher does, on one path.
//  - One virtual call per batch: the dispatcher calls run_batch (or run_one) once per run.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "coproc/base/result.h"
#include "ingest/request.h"
#include "scheduler/scheduler_types.h"

namespace coproc::daemon {

class Dispatcher;
class RunStats;
struct LoadedModel;

// How a model's requests may be grouped, fixed at load: what the dispatcher and its scheduler
// need to know of a model, told by its executor.
struct BatchTraits {
  // The model cannot stack requests of different shapes (an infer model with a dynamic dim
  // beyond dim 1): it runs one request per batch, whole.
  bool one_per_batch = false;
  // A row range of a request can run alone (every input and output has a dynamic dim 0, the
  // batch): a request over max_batch or the memory limit runs in chunks.
  bool chunkable = false;
  // Requests differ in a variable-length dim (dim 1 of some inputs, WorkItem::length) and are
  // padded to their batch's length.
  bool variable_length = false;
};

// When and how long an item ran, for its completion.
struct RunTiming {
  uint64_t start_ticks = 0;  // CycleClock, when its run started
  uint64_t exec_ns = 0;      // the run's execution time
  uint32_t batch_rows = 0;   // rows of the run it was part of
};

// Where an executor reports an item of a run that ended on its own. The dispatcher answers it:
// its completion (or, for a chunk that is not its request's last, its progress), its error, and
// their counters, the same way for every executor. Made by the dispatcher for one run on one
// thread.
class Answers {
 public:
  // The item's outputs are written in its client's arena, of `shapes` (the item's own rows).
  // wake: wake the client now; false when the dispatcher wakes each client of a batch once,
  // after the batch.
  void ok(WorkItem& item, std::span<runtime::Shape> shapes, const RunTiming& timing, bool wake);
  // The item failed alone; the rest of its run goes on.
  void fail(WorkItem& item, ErrorCode code, std::string_view message);

 private:
  friend class Dispatcher;
  Answers(Dispatcher& dispatcher, RunStats& stats) : dispatcher_(dispatcher), stats_(stats) {}
  Dispatcher& dispatcher_;
  RunStats& stats_;
};

// A batch handed to an executor: requests (or chunks) of one model whose clients were alive when
// it was handed over.
struct BatchRun {
  std::span<WorkItem* const> items;  // at least one, in the scheduler's order
  int64_t rows = 0;                  // the items' rows, summed
  int64_t padded_length = 0;         // variable-length models: every item is padded to this
};

// How a run ended, for the dispatcher's counters and the scheduler's cost model.
struct RunEnd {
  enum class Kind {
    kRan,     // the model ran; each item was reported (ok, or fail when its outputs do not fit)
    kFailed,  // the run failed before any output was written: every item is answered `error`
    // run_batch only: the items cannot run together (over the memory limit, or the model refused
    // one item's data), so the dispatcher runs each alone and only the culprit fails.
    kRunEachAlone,
  };
  Kind kind = Kind::kRan;
  uint64_t exec_ns = 0;  // kRan: the model's execution time
  bool on_gpu = false;   // kRan: it ran on the OpenCL device
  Error error;           // kFailed

  static RunEnd failed(Error e) { return {Kind::kFailed, 0, false, std::move(e)}; }
};

class Executor {
 public:
  // What one executing thread keeps for this executor's runs (for infer: plan caches, scratch,
  // staging buffers). Made once per thread, used by that thread only.
  class Thread {
   public:
    virtual ~Thread() = default;
  };

  virtual ~Executor() = default;

  virtual BatchTraits traits(const LoadedModel& model) const = 0;
  // What a batch of the model needs in memory, for a policy's memory_limit. Called under the
  // dispatcher's lock only (the estimator may cache).
  virtual sched::MemoryEstimator memory_estimator(const LoadedModel& model) const = 0;
  virtual std::unique_ptr<Thread> make_thread() const = 0;
  // Runs one request or chunk alone, in place on its client's arena (zero-copy). `thread` is
  // one this executor made, for the calling thread. Never kRunEachAlone.
  virtual RunEnd run_one(WorkItem& item, Thread& thread, Answers& answers) const = 0;
  // Runs a batch as one run of the model: inputs gathered, outputs scattered back.
  virtual RunEnd run_batch(const BatchRun& batch, Thread& thread, Answers& answers) const = 0;
};

}  // namespace coproc::daemon
