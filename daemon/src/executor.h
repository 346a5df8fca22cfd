// Runs verified requests on the CPU. The seam where the batcher plugs in:
// today every request is its own batch of one.
//
// Thread layout for small machines: the poller already spins, and a client
// that waits spins too, so on two cores the execution path must not add a
// third spinner. Cheap requests (measured batch-1 cost below inline_max) run
// to completion on the poller thread, with no hand-off at all; expensive ones
// go to the executor thread, which sleeps on a condition variable when idle.
// Each thread owns its runtime Sessions (plan caches, scratch), so the two
// never share mutable state; completions to one client are serialised by
// that client's completion mutex.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "models.h"
#include "request.h"

namespace coproc::daemon {

class Executor {
 public:
  Executor(const ModelSet& models, int64_t inline_max_ns);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void start();
  // Poller thread: runs the item now, or queues a copy for the executor
  // thread (which then pins the client with keep_alive).
  void dispatch(WorkItem& item);
  // Poller thread: a queued request is answered CANCELLED and never runs.
  // A running one is not interrupted: it completes with its result.
  bool cancel(const ClientSession& session, uint64_t target_id);
  // Nothing queued and nothing running on the executor thread.
  bool idle() const;
  // Finishes everything queued, then joins the thread.
  void stop();

 private:
  struct ThreadState {
    std::vector<std::unique_ptr<runtime::Session>> sessions;  // one per model
  };
  // start_ticks: CycleClock time execution starts; queue time is measured
  // from the request's received_ticks to it.
  void execute(WorkItem& item, ThreadState& state, uint64_t start_ticks);
  void worker_loop();
  ThreadState make_thread_state() const;

  const ModelSet& models_;
  const int64_t inline_max_ns_;
  ThreadState poller_state_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WorkItem> queue_;
  bool running_item_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace coproc::daemon
