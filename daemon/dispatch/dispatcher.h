// The dispatcher: admits the checked requests the poller reads (ingest/), queues them per model
// in the scheduler, hands each batch the scheduler forms to the model's Executor (executor.h),
// and answers every admitted request exactly once. It names no runtime type: what runs a model
// is the executor's; completions, errors and their counters are the dispatcher's, on one path
// for every executor (dispatcher_answer.cc).
//
// Threads and the thread layout for small machines (the poller and a waiting
// client already spin, so nothing here may spin):
//  - The poller hands over each drain pass's requests (submit_pass). When a
//    pass brings exactly one request, its model's queue is empty, nothing is
//    running, the policy would dispatch it alone at once and it is cheap
//    (measured cost <= inline_max), the poller runs it right there, zero-copy
//    on the client's arena: the low-load latency path, no hand-off.
//  - Everything else goes through the model's ModelScheduler (priorities,
//    round-robin fairness, aging, deadlines, admission, batch formation) and
//    runs on the batch worker thread, which sleeps on a condition variable
//    until a batch is due, a timer (max_wait, deadline, aging) fires, or the
//    poller admits work while it sleeps.
//  - One batch runs at a time (device_busy_): the CPU is one device.
// Locking: mu_ guards the slab and free tickets, every model's scheduler and policy, queued_,
// device_busy_, worker_sleeping_, stopping_ and next_model_; it is never held while a model runs
// or a client is answered (end_chunk takes it only to settle a slot). busy_hint_ mirrors
// device_busy_ for the poller's lock-free spin decision (relaxed: a hint, never a guard). cv_
// is notified under the rules in submit_pass: the worker announces its sleep (worker_sleeping_)
// under mu_, and whoever adds work reads that flag under mu_ after adding it.
// Chunks: a request with more rows than its model's max_batch (or over its
// memory_limit) runs a chunk of rows at a time (the scheduler's
// chunk_requests, model_scheduler.h), each chunk batched like any other work,
// so more urgent requests run between two chunks. A chunk is a copy of the
// request cut to its rows (ChunkOf); it reads the client's inputs at its first
// row and writes its outputs there, in place. The request stays in its slot
// until its last chunk is taken; a chunk that is not the last answers nothing
// and ends in end_chunk(), which settles the request when it cannot go on:
// the chunk failed (that error), the client died (dropped), or a cancel or an
// expiry came while the chunk ran (answered then, never while a chunk still
// writes into the arena). Cancel and expiry between chunks answer at once.
// Since one batch runs at a time, a request's chunks run in order and its last
// finishes last. Models the executor does not call chunkable (for infer: inputs
// or outputs with a scalar, or a dynamic dim beyond dim 1, which run one request
// per batch) never chunk.
// Exactly once: a request leaves through a run (OK or an error for that
// request; its last chunk for one in chunks), expiry (DEADLINE_EXCEEDED),
// cancel (CANCELLED), refused admission (RESOURCE_EXHAUSTED: over
// limits.max_request_rows or the queue limit) or an error or stop between
// chunks; the only requests never answered are those of a client that died
// (nobody reads). A request that fails its checks never reaches the
// dispatcher: ingest answers it.
// Cancelling a running request stops it only between chunks: a request that
// runs whole, or its last chunk, completes with its result.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dispatch/executor.h"
#include "ingest/request.h"
#include "observe/registry.h"
#include "observe/run_stats.h"
#include "scheduler/model_scheduler.h"

namespace coproc::daemon {

class ModelSet;

class Dispatcher {
 public:
  // request_memory_bytes (limits.request_memory): the most one run, a request, a chunk
  // or a batch, may use (inputs, outputs and scratch); a run over it is
  // answered RESOURCE_EXHAUSTED, a batch over it runs request by request.
  // max_request_rows (limits.max_request_rows): a request with more rows is
  // refused RESOURCE_EXHAUSTED at admission.
  Dispatcher(const ModelSet& models, Registry& registry, std::vector<sched::Policy> policies,
             int64_t inline_max_ns, uint64_t request_memory_bytes, uint32_t max_request_rows);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void start();
  // Poller thread: one drain pass's requests, each checked by ingest. now_ns is CLOCK_MONOTONIC.
  void submit_pass(std::span<WorkItem> items, uint64_t now_ns);
  // Poller thread: a queued request is answered CANCELLED and never runs.
  void cancel(ClientSession& session, uint64_t id);
  // Any thread (SIGHUP): takes effect for the next batch; queued requests stay.
  void set_policy(uint32_t model_id, sched::Policy policy);
  // Nothing queued and nothing running.
  bool idle() const;
  // A batch is running on the worker or inline. Lock-free, for the poller's
  // spin decision: while the CPU is busy with a batch, spinning would only
  // take a core from it and from the clients (relaxed: a hint).
  bool busy() const { return busy_hint_.load(std::memory_order_relaxed); }
  // Finishes what is queued (the worker keeps dispatching), then joins.
  void stop();

 private:
  friend class Answers;  // an executor's reports come in through finish_ok and fail
  struct ModelState;
  struct ThreadState;
  // A queued request; one in chunks carries its progress in item.chunk.
  struct Slot {
    WorkItem item;
    bool chunk_running = false;       // a chunk of it runs: end_chunk() settles it
    ErrorCode stop = ErrorCode::kOk;  // cancelled or expired while that chunk ran
  };
  // How a chunk that is not its request's last ended.
  struct ChunkEnd {
    enum class Kind { kRan, kFailed, kClientGone } kind = Kind::kRan;
    uint64_t start_ticks = 0;  // kRan
    uint64_t exec_ns = 0;
    uint32_t batch_rows = 0;
    ErrorCode code = ErrorCode::kOk;  // kFailed
    std::string_view message;
  };
  struct Formed {
    uint32_t model_id = 0;
    sched::Batch batch;
    std::vector<WorkItem> items;
  };

  // dispatcher.cc: admission, the slab, cancel and expiry, taking batches, the worker loop.
  std::unique_ptr<ThreadState> make_thread_state(uint32_t writer) const;
  // The policy the scheduler runs for a model: configured, adjusted to what the model allows.
  static sched::Policy effective_policy(const BatchTraits& traits, sched::Policy policy);
  // kOk, or why the request is refused at admission (the message in *problem): an operator's
  // limit; the request itself was checked by ingest.
  ErrorCode admission_problem(const WorkItem& item, std::string* problem) const;
  // Admits one request (mu_ held), or adds it to *refused with the answer it gets.
  void admit_locked(WorkItem& item, uint64_t now_ns,
                    std::vector<std::pair<WorkItem, Error>>* refused);
  bool fast_path_allowed_locked(const WorkItem& item) const;
  std::optional<Formed> take_batch_locked(uint64_t now_ns);
  void expire_locked(uint64_t now_ns, std::vector<WorkItem>* expired);
  void release_slot_locked(uint64_t ticket);
  // A request the scheduler just withdrew (cancel, deadline): taken out of its slot, or, while
  // one of its chunks runs, only marked with `code` and answered when that chunk ends
  // (end_chunk), so nothing writes its outputs after the answer.
  std::optional<WorkItem> withdraw_locked(uint64_t ticket, ErrorCode code);
  // The copy of `request` that runs `slice` of its rows.
  static WorkItem chunk_of(const WorkItem& request, uint64_t ticket, const sched::Slice& slice);
  uint64_t next_event_locked(uint64_t now_ns) const;
  void publish_depth_locked(uint32_t model_id);
  void worker_loop();

  // dispatcher_answer.cc: handing runs to executors, and answering what leaves the dispatcher.
  // Runs one request (or chunk) alone on its own arena, if its client still waits and its
  // deadline has not passed; the execution ns, or 0 when it did not run.
  uint64_t run_alone(WorkItem& item, ThreadState& thread);
  void run_formed(Formed& formed, ThreadState& thread);
  void answer(WorkItem& item, ErrorCode code, std::string_view message, RunStats& stats);
  // A request cancelled or expired (`code`) before its end: counted and answered with what ran.
  void answer_stopped(WorkItem& request, ErrorCode code, RunStats& stats);
  // answer() for an item a run path holds: a chunk that is not the last goes to end_chunk().
  void fail(WorkItem& item, ErrorCode code, std::string_view message, RunStats& stats);
  // The client died: the request is dropped (a chunk that is not the last, through end_chunk()).
  void drop(WorkItem& item, RunStats& stats);
  // An item ran: its completion, or for a chunk that is not the last, its progress.
  // `shapes` are the item's own output shapes (a chunk's rows).
  void finish_ok(WorkItem& item, std::span<runtime::Shape> shapes, RunTiming timing, bool wake,
                 RunStats& stats);
  void end_chunk(const WorkItem& chunk, const ChunkEnd& end, RunStats& stats);
  // After a completion was dropped: wakes the poller if the client overflowed.
  void report_overflow(const ClientSession& session);

  Registry& registry_;
  const int64_t inline_max_ns_;
  const uint32_t max_request_rows_;
  // What runs the models: one executor per kind of model in the set, shared by the threads.
  std::vector<std::unique_ptr<Executor>> executors_;
  std::vector<std::unique_ptr<ModelState>> states_;  // by model id
  std::unique_ptr<ThreadState> poller_state_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slab_;  // queued requests by ticket
  std::vector<uint64_t> free_tickets_;
  uint64_t queued_ = 0;
  bool device_busy_ = false;
  std::atomic<bool> busy_hint_{false};  // mirrors device_busy_ for busy()
  void set_busy_locked(bool busy) {
    device_busy_ = busy;
    busy_hint_.store(busy, std::memory_order_relaxed);
  }
  bool worker_sleeping_ = false;
  bool stopping_ = false;
  std::thread worker_;
  std::size_t next_model_ = 0;  // round-robin over models when forming batches
};

}  // namespace coproc::daemon
