// The dispatcher's execution side (dispatcher.h): running one request or a formed batch on a
// thread's sessions, and answering each request that leaves the dispatcher: its completion, its
// error, or for a chunk that is not its request's last, its progress (end_chunk). The queue is
// dispatcher.cc.
#include <algorithm>
#include <array>
#include <new>
#include <string>

#include "coproc/ring/wait.h"
#include "dispatch/batch_io.h"
#include "dispatch/dispatcher.h"
#include "dispatch/dispatcher_state.h"
#include "ingest/completion.h"
#include "platform/cycle_clock.h"

namespace coproc::daemon {

namespace {

// Runs f, which returns a Result or Status, turning std::bad_alloc into
// kResourceExhausted: a request that needs more memory than the host has left
// fails on its own, and the thread that ran it carries on.
template <class F>
auto without_bad_alloc(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, std::string("out of memory ") + what);
  }
}

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

uint64_t Dispatcher::run_single(WorkItem& item, ThreadState& state) {
  ClientSession& client = *item.session;
  const uint32_t model_id = item.model->id;
  wire::ModelStats& st = stats(model_id, state.writer);
  if (client.closed()) {
    drop(item, state.writer);
    return 0;
  }
  if (item.deadline_ns != 0 && static_cast<uint64_t>(ring::monotonic_ns()) >= item.deadline_ns) {
    bump(st.expired);
    fail(item, ErrorCode::kDeadlineExceeded, "deadline passed before execution", state.writer);
    return 0;
  }
  const int64_t item_rows = request_rows(item);
  auto plan = without_bad_alloc("planning a request", [&] {
    return state.with_session(*item.model, item_rows, [&](auto& session) {
      return session.prepare({item.input_shapes.data(), item.n_inputs});
    });
  });
  if (!plan.ok()) {
    fail(item, plan.error().code, plan.error().message, state.writer);
    return 0;
  }
  std::array<runtime::Shape, kMaxTensorsPerRequest> out_shapes;
  std::array<void*, kMaxTensorsPerRequest> outs;
  for (uint32_t j = 0; j < item.n_outputs; ++j) {
    out_shapes[j] = (*plan)->output_shape(j);
    std::string problem;
    outs[j] = output_place(item, j, out_shapes[j], &problem);
    if (outs[j] == nullptr) {
      fail(item, ErrorCode::kInvalidArgument, problem, state.writer);
      return 0;
    }
  }
  const uint64_t start = CycleClock::now();
  // One request (or one chunk of it), no padding: the model reads and writes the client's arena.
  Status run = state.with_session(*item.model, item_rows, [&](auto& session) {
    return session.run(**plan, {item.inputs.data(), item.n_inputs}, {outs.data(), item.n_outputs});
  });
  const uint64_t end = CycleClock::now();
  if (!run.ok()) {
    fail(item, run.error().code, run.error().message, state.writer);
    return 0;
  }
  const uint64_t exec_ns = CycleClock::to_ns(end - start);
  const uint32_t rows = static_cast<uint32_t>(item_rows);
  finish_ok(item, {out_shapes.data(), item.n_outputs}, start, exec_ns, rows, /*wake=*/true,
            state.writer);
  count_run(st, state.writer, item.model->on_gpu(rows), rows, exec_ns);
  return exec_ns;
}

void Dispatcher::count_run(wire::ModelStats& st, uint32_t writer, bool on_gpu, uint64_t rows,
                           uint64_t exec_ns) const {
  bump(st.batches);
  if (on_gpu) bump(st.batches_on_gpu);
  bump(st.batch_rows, rows);
  bump(st.batch_size_histogram[wire::histogram_bucket(rows, wire::kBatchSizeBuckets)]);
  bump(st.exec_ns_histogram[wire::histogram_bucket(exec_ns, wire::kLatencyBuckets)]);
  bump(st.exec_ns_sum, exec_ns);
  wire::DeviceStats::Busy& device = registry_.device_stats(on_gpu ? 1 : 0).by_writer[writer];
  bump(device.busy_ns, exec_ns);
  bump(device.batches);
}

void Dispatcher::run_batch(Formed& formed, ThreadState& state) {
  const uint32_t model_id = formed.model_id;
  const ModelState& ms = *states_[model_id];
  wire::ModelStats& st = stats(model_id, state.writer);
  // Requests of clients that died meanwhile are dropped: nobody reads them.
  std::vector<WorkItem*> live;
  int64_t rows = 0, max_length = 0;
  for (WorkItem& item : formed.items) {
    if (item.session->closed()) {
      drop(item, state.writer);
      continue;
    }
    live.push_back(&item);
    rows += request_rows(item);
    max_length = std::max(max_length, request_length(ms, item));
  }
  if (live.empty()) return;
  const int64_t padded = formed.batch.padded_length > 0 ? formed.batch.padded_length : max_length;
  const bool needs_padding =
      ms.length_input >= 0 && std::any_of(live.begin(), live.end(), [&](WorkItem* w) {
        return request_length(ms, *w) != padded;
      });
  if (live.size() == 1 && !needs_padding) {
    const uint64_t exec_ns = run_single(*live[0], state);
    if (exec_ns > 0) {
      std::lock_guard lock(mu_);
      states_[model_id]->scheduler.record_execution(static_cast<uint32_t>(rows), padded, exec_ns);
    }
    return;
  }
  const LoadedModel& model = *live[0]->model;
  const auto& in_specs = model.model->inputs();
  const auto& out_specs = model.model->outputs();
  std::array<runtime::Shape, kMaxTensorsPerRequest> shapes;
  std::array<const void*, kMaxTensorsPerRequest> ins;
  std::array<void*, kMaxTensorsPerRequest> outs;
  // Staging and planning allocate: a batch too big for the memory left fails, the daemon lives.
  // A batch for the OpenCL device is gathered into its session's pinned staging, and its outputs
  // come back there, so the transfers are DMA from and to pinned memory.
  const bool on_gpu = model.on_gpu(rows);
  auto plan = without_bad_alloc("staging a batch", [&]() -> Result<const runtime::Plan*> {
    for (uint32_t i = 0; i < in_specs.size(); ++i) {
      shapes[i] = batched_shape(live[0]->input_shapes[i], rows, ms.input_dim1[i], padded);
    }
    auto prepared = state.with_session(model, rows, [&](auto& session) {
      return session.prepare({shapes.data(), in_specs.size()});
    });
    if (!prepared.ok()) return prepared;
    state.inputs.resize(std::max(state.inputs.size(), in_specs.size()));
    state.outputs.resize(std::max(state.outputs.size(), out_specs.size()));
    runtime::ClSession* cl = on_gpu ? state.cl_sessions[model_id].get() : nullptr;
    for (uint32_t i = 0; i < in_specs.size(); ++i) {
      const std::size_t elem = runtime::dtype_bytes(in_specs[i].dtype);
      const auto bytes = static_cast<std::size_t>(shapes[i].elements()) * elem;
      void* staging = cl != nullptr ? cl->input_staging(i) : nullptr;
      if (staging == nullptr) {
        state.inputs[i].resize(bytes);
        staging = state.inputs[i].data();
      }
      gather_input(live, i, ms.input_dim1[i], padded, elem, static_cast<std::byte*>(staging));
      ins[i] = staging;
    }
    for (uint32_t j = 0; j < out_specs.size(); ++j) {
      if (cl != nullptr) {
        outs[j] = cl->output_staging(j);
      } else {
        state.outputs[j].resize((*prepared)->output_bytes(j));
        outs[j] = state.outputs[j].data();
      }
    }
    return prepared;
  });
  if (!plan.ok()) {
    // Together over the memory limit: each alone may fit, and one that does not fails alone.
    if (live.size() > 1 && plan.error().code == ErrorCode::kResourceExhausted) {
      for (WorkItem* w : live) run_single(*w, state);
      return;
    }
    for (WorkItem* w : live) fail(*w, plan.error().code, plan.error().message, state.writer);
    return;
  }
  const uint64_t start = CycleClock::now();
  // Rows of a batch are independent (the contract of batching): the device may split them to
  // overlap its transfers with its work.
  Status run = state.with_session(model, rows, [&](auto& session) {
    return session.run_rows(**plan, {ins.data(), in_specs.size()}, {outs.data(), out_specs.size()});
  });
  const uint64_t end = CycleClock::now();
  if (!run.ok()) {
    // The model refused some request's data (a token id out of range): run each alone, so only
    // the request that carries it fails and its batch mates are answered as if it were absent.
    if (live.size() > 1 && run.error().code == ErrorCode::kInvalidArgument) {
      for (WorkItem* w : live) run_single(*w, state);
      return;
    }
    for (WorkItem* w : live) fail(*w, run.error().code, run.error().message, state.writer);
    return;
  }
  const uint64_t exec_ns = CycleClock::to_ns(end - start);
  int64_t row_offset = 0;
  std::array<runtime::Shape, kMaxTensorsPerRequest> item_shapes;
  std::array<std::byte*, kMaxTensorsPerRequest> places;
  for (WorkItem* w : live) {
    const int64_t r = request_rows(*w);
    const int64_t length = request_length(ms, *w);
    std::string problem;
    for (uint32_t j = 0; j < out_specs.size() && problem.empty(); ++j) {
      item_shapes[j] = item_output_shape((*plan)->output_shape(j), r, ms.output_dim1[j], length);
      places[j] = output_place(*w, j, item_shapes[j], &problem);
    }
    if (!problem.empty()) {
      fail(*w, ErrorCode::kInvalidArgument, problem, state.writer);
      row_offset += r;
      continue;
    }
    for (uint32_t j = 0; j < out_specs.size(); ++j) {
      scatter_output(static_cast<const std::byte*>(outs[j]), (*plan)->output_shape(j), row_offset,
                     r, ms.output_dim1[j], length, runtime::dtype_bytes(out_specs[j].dtype),
                     places[j]);
    }
    finish_ok(*w, {item_shapes.data(), out_specs.size()}, start, exec_ns,
              static_cast<uint32_t>(rows),
              /*wake=*/false, state.writer);
    row_offset += r;
  }
  // One wake-up per client of the batch, not one per completion: a client
  // asleep in a futex would otherwise cost a wake syscall for each.
  for (std::size_t i = 0; i < live.size(); ++i) {
    bool seen = false;
    for (std::size_t k = 0; k < i && !seen; ++k) seen = live[k]->session == live[i]->session;
    if (!seen) live[i]->session->wake();
  }
  count_run(st, state.writer, on_gpu, static_cast<uint64_t>(rows), exec_ns);
  bump(st.padded_elements_wasted, formed.batch.padded_elements_wasted);
  if (ms.length_input >= 0) bump(st.padded_elements_total, static_cast<uint64_t>(rows * padded));
  std::lock_guard lock(mu_);
  states_[model_id]->scheduler.record_execution(static_cast<uint32_t>(rows), padded, exec_ns);
}

std::byte* Dispatcher::output_place(const WorkItem& item, uint32_t j, const runtime::Shape& shape,
                                    std::string* problem) {
  const auto& spec = item.model->model->outputs()[j];
  const uint64_t bytes = static_cast<uint64_t>(shape.elements()) * runtime::dtype_bytes(spec.dtype);
  uint64_t offset = 0;
  uint64_t need = bytes;
  runtime::Shape whole = shape;
  if (item.chunk.total_rows > 0) {
    // The model declares a dynamic dim 0 (chunkable), but the shape a run computes is checked:
    // an output whose dim 0 is not this chunk's rows has no place in the request's buffer.
    if (shape.rank < 1 || shape.dims[0] != request_rows(item)) {
      *problem = "output '" + spec.name + "' of shape " + shape.to_string() +
                 " does not have the chunk's " + std::to_string(request_rows(item)) +
                 " rows in dim 0, so it cannot run in chunks";
      return nullptr;
    }
    const uint64_t row_bytes = bytes / static_cast<uint64_t>(shape.dims[0]);  // dim 0: the rows
    offset = row_bytes * static_cast<uint64_t>(item.chunk.first_row);
    need = row_bytes * static_cast<uint64_t>(item.chunk.total_rows);
    whole.dims[0] = item.chunk.total_rows;
  }
  if (item.output_bytes[j] < need) {
    *problem = "output '" + spec.name + "' of shape " + whole.to_string() + " needs " +
               std::to_string(need) + " bytes, request reserved " +
               std::to_string(item.output_bytes[j]);
    return nullptr;
  }
  return static_cast<std::byte*>(item.outputs[j]) + offset;
}

void Dispatcher::answer(WorkItem& item, ErrorCode code, std::string_view message, uint32_t writer) {
  if (!send_error(*item.session, item.id, code, message)) report_overflow(*item.session);
  bump(stats(item.model->id, writer).completed[static_cast<int>(code)]);
}

void Dispatcher::answer_stopped(WorkItem& request, ErrorCode code, uint32_t writer) {
  wire::ModelStats& st = stats(request.model->id, writer);
  bump(code == ErrorCode::kCancelled ? st.cancelled : st.expired);
  answer(request, code, stopped_message(request, code), writer);
}

void Dispatcher::fail(WorkItem& item, ErrorCode code, std::string_view message, uint32_t writer) {
  if (chunk_not_last(item)) {
    end_chunk(item, {.kind = ChunkEnd::Kind::kFailed, .code = code, .message = message}, writer);
    return;
  }
  answer(item, code, message, writer);
}

void Dispatcher::drop(WorkItem& item, uint32_t writer) {
  if (chunk_not_last(item)) {
    end_chunk(item, {.kind = ChunkEnd::Kind::kClientGone}, writer);
    return;
  }
  bump(stats(item.model->id, writer).dropped_client_gone);
}

void Dispatcher::finish_ok(WorkItem& item, std::span<runtime::Shape> shapes, uint64_t start_ticks,
                           uint64_t exec_ns, uint32_t batch_rows, bool wake, uint32_t writer) {
  if (chunk_not_last(item)) {
    end_chunk(item,
              {.kind = ChunkEnd::Kind::kRan,
               .start_ticks = start_ticks,
               .exec_ns = exec_ns,
               .batch_rows = batch_rows},
              writer);
    return;
  }
  if (item.chunk.total_rows > 0) {
    // The last chunk answers for the request: queued until its first chunk started, executing
    // for all of its chunks, in batches of up to batch_rows rows; outputs of all its rows.
    if (item.chunk.first_start_ticks != 0) start_ticks = item.chunk.first_start_ticks;
    exec_ns += item.chunk.exec_ns;
    batch_rows = std::max(batch_rows, item.chunk.batch_rows);
    for (runtime::Shape& shape : shapes) shape.dims[0] = item.chunk.total_rows;
  }
  const uint64_t queue_ns = CycleClock::to_ns(start_ticks - item.received_ticks);
  if (!send_completion(*item.session, item.id, ErrorCode::kOk, {}, shapes,
                       {queue_ns, exec_ns, batch_rows}, wake)) {
    report_overflow(*item.session);
  }
  const uint64_t e2e_ns = CycleClock::to_ns(CycleClock::now() - item.received_ticks);
  wire::ModelStats& st = stats(item.model->id, writer);
  bump(st.completed[0]);
  bump(st.queue_ns_histogram[wire::histogram_bucket(queue_ns, wire::kLatencyBuckets)]);
  bump(st.queue_ns_sum, queue_ns);
  bump(st.e2e_ns_histogram[wire::histogram_bucket(e2e_ns, wire::kLatencyBuckets)]);
  bump(st.e2e_ns_sum, e2e_ns);
}

void Dispatcher::end_chunk(const WorkItem& chunk, const ChunkEnd& end, uint32_t writer) {
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
  wire::ModelStats& st = stats(model_id, writer);
  if (request.session->closed()) {
    bump(st.dropped_client_gone);
  } else if (end.kind == ChunkEnd::Kind::kFailed && end.code == ErrorCode::kDeadlineExceeded) {
    // The deadline passed just before this chunk ran (run_single's check, which counted it):
    // say, as between chunks, how many rows the earlier chunks wrote.
    answer(request, end.code, stopped_message(request, end.code), writer);
  } else if (end.kind == ChunkEnd::Kind::kFailed) {
    answer(request, end.code, end.message, writer);
  } else {
    answer_stopped(request, stop, writer);
  }
}

void Dispatcher::report_overflow(const ClientSession& session) {
  // The poller disconnects an overflowed client; it may be asleep with every
  // ring empty (the stuck client no longer submits), so wake it.
  if (session.overflowed() && !session.closed()) registry_.ring_doorbell();
}

}  // namespace coproc::daemon
