// The dispatcher's per-model and per-thread state (dispatcher.h), shared by its queue side
// (dispatcher.cc) and its run-and-answer side (dispatcher_answer.cc); private to those two files.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "dispatch/dispatcher.h"

namespace coproc::daemon {

struct Dispatcher::ModelState {
  ModelState(const sched::Policy& p, sched::MemoryEstimator estimator, Executor& e, std::size_t ei,
             const BatchTraits& t)
      : scheduler(p, std::move(estimator)), policy(p), executor(e), executor_index(ei), traits(t) {}
  sched::ModelScheduler scheduler;  // mu_
  sched::Policy policy;             // mu_
  Executor& executor;               // runs the model's batches
  std::size_t executor_index;       // of executor in executors_ (and its ThreadState::runs)
  BatchTraits traits;               // fixed at load
};

// What an executing thread (the poller's inline path, the worker) owns: what each executor keeps
// for its runs on this thread, and the stats writer the thread counts with.
struct Dispatcher::ThreadState {
  ThreadState(Registry& registry, uint32_t writer) : stats(registry, writer) {}
  std::vector<std::unique_ptr<Executor::Thread>> runs;  // by executor index
  RunStats stats;
};

}  // namespace coproc::daemon
