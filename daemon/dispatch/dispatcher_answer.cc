// The dispatcher's run-and-answer side (dispatcher.h): handing a run to its model's executor
// (one virtual call per run), and answering each request that leaves the dispatcher: its
// completion, its error, or for a chunk that is not its request's last, its progress
// (end_chunk). This is the one path for every executor: an executor reports through Answers and
// its RunEnd, and every completion, error and counter of a run is written here. The queue is
// dispatcher.cc.
#include <algorithm>
#include <string>

#include "coproc/ring/wait.h"
#include "dispatch/dispatcher.h"
#include "dispatch/dispatcher_state.h"
#include "ingest/completion.h"
#include "models/models.h"
#include "platform/cycle_clock.h"

namespace coproc::daemon {

namespace {

bool chunk_not_last(const WorkItem& item) { return item.chunk.total_rows > 0 && !item.chunk.last; }

// Why a request stopped by a cancel or its deadline got no result; after some chunks ran, their
// rows of the outputs are written already.
std::string stopped_message(const WorkItem& request, ErrorCode code) {
  const bool cancelled = code == ErrorCode::kCancelled;
  if (request.chunk.rows_done == 0) {
    return cancelled ? "cancelled before it ran" : "deadline passed while queued";
  }
  return std::string(cancelled ? "cancelled" : "deadline passed") + " after " +
         std::to_string(request.chunk.rows_done) + " of " + std::to_string(request_rows(request)) +
         " rows ran in chunks (their outputs may be written)";
}

}  // namespace

void Answers::ok(WorkItem& item, std::span<runtime::Shape> shapes, const RunTiming& timing,
                 bool wake) {
  dispatcher_.finish_ok(item, shapes, timing, wake, stats_);
}

void Answers::fail(WorkItem& item, ErrorCode code, std::string_view message) {
  dispatcher_.fail(item, code, message, stats_);
}

uint64_t Dispatcher::run_alone(WorkItem& item, ThreadState& thread) {
  RunStats& stats = thread.stats;
  if (item.session->closed()) {
    drop(item, stats);
    return 0;
  }
  if (item.deadline_ns != 0 && static_cast<uint64_t>(ring::monotonic_ns()) >= item.deadline_ns) {
    stats.stopped(item.model->id, ErrorCode::kDeadlineExceeded);
    fail(item, ErrorCode::kDeadlineExceeded, "deadline passed before execution", stats);
    return 0;
  }
  const ModelState& ms = *states_[item.model->id];
  Answers answers(*this, stats);
  RunEnd end = ms.executor.run_one(item, *thread.runs[ms.executor_index], answers);
  if (end.kind != RunEnd::Kind::kRan) {
    COPROC_CHECK(end.kind == RunEnd::Kind::kFailed);  // run_one never asks to split
    fail(item, end.error.code, end.error.message, stats);
    return 0;
  }
  stats.ran(item.model->id, end.on_gpu, static_cast<uint64_t>(request_rows(item)), end.exec_ns);
  return end.exec_ns;
}

void Dispatcher::run_formed(Formed& formed, ThreadState& thread) {
  const uint32_t model_id = formed.model_id;
  ModelState& ms = *states_[model_id];
  RunStats& stats = thread.stats;
  // Requests of clients that died meanwhile are dropped: nobody reads them.
  std::vector<WorkItem*> live;
  int64_t rows = 0, max_length = 0;
  for (WorkItem& item : formed.items) {
    if (item.session->closed()) {
      drop(item, stats);
      continue;
    }
    live.push_back(&item);
    rows += request_rows(item);
    max_length = std::max(max_length, item.length);
  }
  if (live.empty()) return;
  const int64_t padded = formed.batch.padded_length > 0 ? formed.batch.padded_length : max_length;
  const bool needs_padding =
      ms.traits.variable_length &&
      std::any_of(live.begin(), live.end(), [&](WorkItem* w) { return w->length != padded; });
  if (live.size() == 1 && !needs_padding) {
    const uint64_t exec_ns = run_alone(*live[0], thread);
    if (exec_ns > 0) {
      std::lock_guard lock(mu_);
      ms.scheduler.record_execution(static_cast<uint32_t>(rows), padded, exec_ns);
    }
    return;
  }
  Answers answers(*this, stats);
  RunEnd end =
      ms.executor.run_batch({live, rows, padded}, *thread.runs[ms.executor_index], answers);
  switch (end.kind) {
    case RunEnd::Kind::kRunEachAlone:
      for (WorkItem* w : live) run_alone(*w, thread);
      return;
    case RunEnd::Kind::kFailed:
      for (WorkItem* w : live) fail(*w, end.error.code, end.error.message, stats);
      return;
    case RunEnd::Kind::kRan:
      break;
  }
  // One wake-up per client of the batch, not one per completion: a client
  // asleep in a futex would otherwise cost a wake syscall for each.
  for (std::size_t i = 0; i < live.size(); ++i) {
    bool seen = false;
    for (std::size_t k = 0; k < i && !seen; ++k) seen = live[k]->session == live[i]->session;
    if (!seen) live[i]->session->wake();
  }
  stats.ran(model_id, end.on_gpu, static_cast<uint64_t>(rows), end.exec_ns);
  stats.padded(model_id, formed.batch.padded_elements_wasted,
               ms.traits.variable_length ? static_cast<uint64_t>(rows * padded) : 0);
  std::lock_guard lock(mu_);
  ms.scheduler.record_execution(static_cast<uint32_t>(rows), padded, end.exec_ns);
}

void Dispatcher::answer(WorkItem& item, ErrorCode code, std::string_view message, RunStats& stats) {
  if (!send_error(*item.session, item.id, code, message)) report_overflow(*item.session);
  stats.completed(item.model->id, code);
}

void Dispatcher::answer_stopped(WorkItem& request, ErrorCode code, RunStats& stats) {
  stats.stopped(request.model->id, code);
  answer(request, code, stopped_message(request, code), stats);
}

void Dispatcher::fail(WorkItem& item, ErrorCode code, std::string_view message, RunStats& stats) {
  if (chunk_not_last(item)) {
    end_chunk(item, {.kind = ChunkEnd::Kind::kFailed, .code = code, .message = message}, stats);
    return;
  }
  answer(item, code, message, stats);
}

void Dispatcher::drop(WorkItem& item, RunStats& stats) {
  if (chunk_not_last(item)) {
    end_chunk(item, {.kind = ChunkEnd::Kind::kClientGone}, stats);
    return;
  }
  stats.dropped_client_gone(item.model->id);
}

void Dispatcher::finish_ok(WorkItem& item, std::span<runtime::Shape> shapes, RunTiming timing,
                           bool wake, RunStats& stats) {
  if (chunk_not_last(item)) {
    end_chunk(item,
              {.kind = ChunkEnd::Kind::kRan,
               .start_ticks = timing.start_ticks,
               .exec_ns = timing.exec_ns,
               .batch_rows = timing.batch_rows},
              stats);
    return;
  }
  if (item.chunk.total_rows > 0) {
    // The last chunk answers for the request: queued until its first chunk started, executing
    // for all of its chunks, in batches of up to batch_rows rows; outputs of all its rows.
    if (item.chunk.first_start_ticks != 0) timing.start_ticks = item.chunk.first_start_ticks;
    timing.exec_ns += item.chunk.exec_ns;
    timing.batch_rows = std::max(timing.batch_rows, item.chunk.batch_rows);
    for (runtime::Shape& shape : shapes) shape.dims[0] = item.chunk.total_rows;
  }
  const uint64_t queue_ns = CycleClock::to_ns(timing.start_ticks - item.received_ticks);
  if (!send_completion(*item.session, item.id, ErrorCode::kOk, {}, shapes,
                       {queue_ns, timing.exec_ns, timing.batch_rows}, wake)) {
    report_overflow(*item.session);
  }
  const uint64_t e2e_ns = CycleClock::to_ns(CycleClock::now() - item.received_ticks);
  stats.completed_ok(item.model->id, queue_ns, e2e_ns);
}

void Dispatcher::end_chunk(const WorkItem& chunk, const ChunkEnd& end, RunStats& stats) {
  const uint32_t model_id = chunk.model->id;
  const uint64_t ticket = chunk.chunk.ticket;
  WorkItem request;
  ErrorCode stop = ErrorCode::kOk;
  {
    std::lock_guard lock(mu_);
    Slot& slot = slab_[ticket];
    COPROC_CHECK(slot.chunk_running);
    slot.chunk_running = false;
    ChunkOf& progress = slot.item.chunk;
    if (end.kind == ChunkEnd::Kind::kRan) {
      if (progress.first_start_ticks == 0) progress.first_start_ticks = end.start_ticks;
      progress.exec_ns += end.exec_ns;
      progress.batch_rows = std::max(progress.batch_rows, end.batch_rows);
      progress.rows_done = chunk.chunk.first_row + request_rows(chunk);
    }
    stop = slot.stop;
    const bool client_gone = slot.item.session->closed();
    if (stop == ErrorCode::kOk && end.kind == ChunkEnd::Kind::kRan && !client_gone) return;
    if (stop == ErrorCode::kOk) {
      // Still queued with its remaining rows, which must not run now.
      COPROC_CHECK(states_[model_id]->scheduler.cancel(slot.item.session->id(), ticket));
    }
    request = std::move(slot.item);
    release_slot_locked(ticket);
    publish_depth_locked(model_id);
  }
  if (request.session->closed()) {
    stats.dropped_client_gone(model_id);
  } else if (end.kind == ChunkEnd::Kind::kFailed && end.code == ErrorCode::kDeadlineExceeded) {
    // The deadline passed just before this chunk ran (run_alone's check, which counted it):
    // say, as between chunks, how many rows the earlier chunks wrote.
    answer(request, end.code, stopped_message(request, end.code), stats);
  } else if (end.kind == ChunkEnd::Kind::kFailed) {
    answer(request, end.code, end.message, stats);
  } else {
    answer_stopped(request, stop, stats);
  }
}

void Dispatcher::report_overflow(const ClientSession& session) {
  // The poller disconnects an overflowed client; it may be asleep with every
  // ring empty (the stuck client no longer submits), so wake it.
  if (session.overflowed() && !session.closed()) registry_.ring_doorbell();
}

}  // namespace coproc::daemon
