// The dispatcher's queue side (dispatcher.h): admitting what the poller hands over, the slots of
// queued requests, cancel and expiry, taking the batches the scheduler forms (and the chunks of a
// request) and the worker loop that runs them. Handing a run to its executor and answering its
// requests is dispatcher_answer.cc.
#include "dispatch/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "coproc/ring/wait.h"
#include "dispatch/dispatcher_state.h"
#include "dispatch/infer_executor.h"
#include "models/models.h"

namespace coproc::daemon {

Dispatcher::Dispatcher(const ModelSet& models, Registry& registry,
                       std::vector<sched::Policy> policies, int64_t inline_max_ns,
                       uint64_t request_memory_bytes, uint32_t max_request_rows)
    : registry_(registry), inline_max_ns_(inline_max_ns), max_request_rows_(max_request_rows) {
  COPROC_CHECK(policies.size() == models.size());
  // Every model is an ONNX inference model: one InferExecutor runs them all. A new kind of model
  // brings its own Executor, made here and picked per model by the model's kind.
  const std::size_t infer = executors_.size();
  executors_.push_back(std::make_unique<InferExecutor>(models, request_memory_bytes));
  for (const auto& m : models.all()) {
    Executor& executor = *executors_[infer];
    const BatchTraits traits = executor.traits(m);
    if (traits.one_per_batch && policies[m.id].max_batch > 1) {
      spdlog::warn("model '{}' has a dynamic dim beyond dim 1: batching off (max_batch 1)", m.name);
    }
    const sched::Policy policy = effective_policy(traits, policies[m.id]);
    sched::MemoryEstimator estimator;
    if (policy.memory_limit_bytes > 0) estimator = executor.memory_estimator(m);
    states_.push_back(
        std::make_unique<ModelState>(policy, std::move(estimator), executor, infer, traits));
    publish_model_settings(registry_, m);
  }
  poller_state_ = make_thread_state(kPollerWriter);
}

Dispatcher::~Dispatcher() { stop(); }

std::unique_ptr<Dispatcher::ThreadState> Dispatcher::make_thread_state(uint32_t writer) const {
  auto state = std::make_unique<ThreadState>(registry_, writer);
  for (const auto& executor : executors_) state->runs.push_back(executor->make_thread());
  return state;
}

void Dispatcher::start() {
  worker_ = std::thread([this] { worker_loop(); });
}

void Dispatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool Dispatcher::idle() const {
  std::lock_guard lock(mu_);
  return queued_ == 0 && !device_busy_;
}

sched::Policy Dispatcher::effective_policy(const BatchTraits& traits, sched::Policy policy) {
  if (traits.one_per_batch) {
    policy.max_batch = 1;
    policy.min_batch = 1;
    policy.preferred_batch_sizes.clear();
  }
  policy.chunk_requests = traits.chunkable;
  return policy;
}

void Dispatcher::set_policy(uint32_t model_id, sched::Policy policy) {
  {
    std::lock_guard lock(mu_);
    const ModelState& state = *states_[model_id];
    policy = effective_policy(state.traits, std::move(policy));
    states_[model_id]->scheduler.set_policy(policy);
    states_[model_id]->policy = std::move(policy);
  }
  cv_.notify_all();
}

ErrorCode Dispatcher::admission_problem(const WorkItem& item, std::string* problem) const {
  const int64_t rows = request_rows(item);
  if (rows > static_cast<int64_t>(max_request_rows_)) {
    // Legal but over the operator's cap, like limits.request_memory: split it.
    *problem = "request of " + std::to_string(rows) + " rows is over limits.max_request_rows (" +
               std::to_string(max_request_rows_) + ")";
    return ErrorCode::kResourceExhausted;
  }
  return ErrorCode::kOk;
}

bool Dispatcher::fast_path_allowed_locked(const WorkItem& item) const {
  const ModelState& state = *states_[item.model->id];
  const sched::Policy& p = state.policy;
  const int64_t rows = request_rows(item);
  const bool alone_at_once =
      rows >= static_cast<int64_t>(p.max_batch) ||
      (p.mode == sched::Mode::kDynamic && rows >= static_cast<int64_t>(p.min_batch)) ||
      (p.mode == sched::Mode::kAdaptive && p.target == sched::Target::kLatency);
  // Only CPU runs stay on the poller: the OpenCL device is the worker's.
  const bool cheap = item.model->batch1_exec_ns * std::max<int64_t>(rows, 1) <= inline_max_ns_ &&
                     !item.model->on_gpu(rows);
  // A request the scheduler would split runs in chunks on the worker, never whole on the poller.
  const bool whole = !p.chunk_requests || rows <= static_cast<int64_t>(p.max_batch);
  return alone_at_once && cheap && whole && !device_busy_ && state.scheduler.queued() == 0 &&
         p.length_buckets.empty();
}

void Dispatcher::submit_pass(std::span<WorkItem> items, uint64_t now_ns) {
  if (items.empty()) return;
  std::vector<std::pair<WorkItem, Error>> refused;
  bool run_now = false;
  bool wake_worker = false;
  {
    std::lock_guard lock(mu_);
    if (items.size() == 1 && fast_path_allowed_locked(items[0])) {
      set_busy_locked(true);
      run_now = true;
    } else {
      for (WorkItem& item : items) admit_locked(item, now_ns, &refused);
      wake_worker = worker_sleeping_;
    }
  }
  if (run_now) {
    WorkItem& item = items[0];
    std::string problem;
    const ErrorCode refused_with = admission_problem(item, &problem);
    RunStats& stats = poller_state_->stats;
    if (refused_with != ErrorCode::kOk) {
      stats.rejected_invalid(item.model->id);
      answer(item, refused_with, problem, stats);
    } else {
      stats.accepted(item.model->id);
      run_alone(item, *poller_state_);
    }
    std::lock_guard lock(mu_);
    set_busy_locked(false);
    if (queued_ > 0 && worker_sleeping_) cv_.notify_one();
  } else if (wake_worker) {
    // Read under the lock after admitting: the worker either saw the new work
    // before it slept, or had announced its sleep and gets this notify.
    cv_.notify_one();
  }
  for (auto& [item, error] : refused) answer(item, error.code, error.message, poller_state_->stats);
}

void Dispatcher::admit_locked(WorkItem& item, uint64_t now_ns,
                              std::vector<std::pair<WorkItem, Error>>* refused) {
  const uint32_t model_id = item.model->id;
  ModelState& state = *states_[model_id];
  RunStats& stats = poller_state_->stats;  // admission runs on the poller thread
  std::string problem;
  const ErrorCode refused_with = admission_problem(item, &problem);
  if (refused_with != ErrorCode::kOk) {
    stats.rejected_invalid(model_id);  // over limits.max_request_rows
    refused->emplace_back(item, make_error(refused_with, problem));
    return;
  }
  uint64_t ticket;
  if (free_tickets_.empty()) {
    ticket = slab_.size();
    slab_.emplace_back();
  } else {
    ticket = free_tickets_.back();
    free_tickets_.pop_back();
  }
  sched::Request r;
  r.ticket = ticket;
  r.client = item.session->id();
  r.priority = static_cast<sched::Priority>(item.priority);
  r.rows = static_cast<uint32_t>(request_rows(item));
  r.length = item.length;
  r.deadline_ns = item.deadline_ns;
  r.arrival_ns = now_ns;
  if (state.scheduler.admit(r, now_ns) == sched::Admit::kQueueFull) {
    free_tickets_.push_back(ticket);
    stats.rejected_queue_full(model_id);
    refused->emplace_back(item,
                          make_error(ErrorCode::kResourceExhausted,
                                     "queue of model '" + item.model->name + "' is full (" +
                                         std::to_string(state.policy.queue_limit) + " requests)"));
    return;
  }
  stats.accepted(model_id);
  WorkItem& slot = slab_[ticket].item;
  slot = item;
  slot.keep_alive = item.session->shared_from_this();  // the client may die while it waits
  ++queued_;
  publish_depth_locked(model_id);
}

void Dispatcher::publish_depth_locked(uint32_t model_id) {
  const auto depth = states_[model_id]->scheduler.queued_by_priority();
  publish_queue_depth(registry_, model_id, depth);
}

void Dispatcher::cancel(ClientSession& session, uint64_t id) {
  WorkItem cancelled;
  {
    std::lock_guard lock(mu_);
    for (uint64_t ticket = 0; ticket < slab_.size(); ++ticket) {
      Slot& slot = slab_[ticket];
      if (slot.item.session != &session || slot.item.id != id) continue;
      if (!states_[slot.item.model->id]->scheduler.cancel(session.id(), ticket)) return;
      std::optional<WorkItem> withdrawn = withdraw_locked(ticket, ErrorCode::kCancelled);
      if (!withdrawn) return;
      cancelled = std::move(*withdrawn);
      publish_depth_locked(cancelled.model->id);
      break;
    }
  }
  // Not queued: running whole or as its last chunk, or done; it completes normally.
  if (!cancelled.session) return;
  answer_stopped(cancelled, ErrorCode::kCancelled, poller_state_->stats);
}

void Dispatcher::release_slot_locked(uint64_t ticket) {
  slab_[ticket] = Slot{};
  free_tickets_.push_back(ticket);
  --queued_;
}

std::optional<WorkItem> Dispatcher::withdraw_locked(uint64_t ticket, ErrorCode code) {
  Slot& slot = slab_[ticket];
  if (slot.chunk_running) {
    slot.stop = code;
    return std::nullopt;
  }
  WorkItem item = std::move(slot.item);
  release_slot_locked(ticket);
  return item;
}

void Dispatcher::expire_locked(uint64_t now_ns, std::vector<WorkItem>* expired) {
  std::vector<uint64_t> tickets;
  for (uint32_t m = 0; m < states_.size(); ++m) {
    tickets.clear();
    states_[m]->scheduler.expire(now_ns, &tickets);
    for (uint64_t t : tickets) {
      std::optional<WorkItem> item = withdraw_locked(t, ErrorCode::kDeadlineExceeded);
      if (item) expired->push_back(std::move(*item));
    }
    if (!tickets.empty()) publish_depth_locked(m);
  }
}

uint64_t Dispatcher::next_event_locked(uint64_t now_ns) const {
  uint64_t next = sched::kNever;
  for (const auto& s : states_) next = std::min(next, s->scheduler.next_event_ns(now_ns));
  return next;
}

WorkItem Dispatcher::chunk_of(const WorkItem& request, uint64_t ticket, const sched::Slice& slice) {
  WorkItem chunk = request;
  const auto& specs = request.model->model->inputs();
  for (uint32_t i = 0; i < request.n_inputs; ++i) {
    runtime::Shape& shape = chunk.input_shapes[i];  // rank >= 1: the model is chunkable
    const auto row_bytes = static_cast<std::size_t>(shape.elements() / shape.dims[0]) *
                           runtime::dtype_bytes(specs[i].dtype);
    chunk.inputs[i] =
        static_cast<const std::byte*>(request.inputs[i]) + slice.first_row * row_bytes;
    shape.dims[0] = slice.rows;
  }
  chunk.chunk.ticket = ticket;
  chunk.chunk.first_row = slice.first_row;
  chunk.chunk.total_rows = request_rows(request);
  chunk.chunk.last = slice.last;
  return chunk;
}

std::optional<Dispatcher::Formed> Dispatcher::take_batch_locked(uint64_t now_ns) {
  for (std::size_t k = 0; k < states_.size(); ++k) {
    const std::size_t m = (next_model_ + k) % states_.size();
    auto batch = states_[m]->scheduler.next_batch(now_ns);
    if (!batch) continue;
    next_model_ = (m + 1) % states_.size();
    Formed formed;
    formed.model_id = static_cast<uint32_t>(m);
    for (std::size_t i = 0; i < batch->tickets.size(); ++i) {
      const uint64_t t = batch->tickets[i];
      const sched::Slice& slice = batch->slices[i];
      Slot& slot = slab_[t];
      if (slice.first_row == 0 && slice.last) {
        formed.items.push_back(std::move(slot.item));
        release_slot_locked(t);
      } else {
        formed.items.push_back(chunk_of(slot.item, t, slice));
        if (slice.last) {
          release_slot_locked(t);
        } else {
          slot.chunk_running = true;
        }
      }
    }
    formed.batch = std::move(*batch);
    publish_depth_locked(formed.model_id);
    return formed;
  }
  return std::nullopt;
}

void Dispatcher::worker_loop() {
  std::unique_ptr<ThreadState> state = make_thread_state(kWorkerWriter);
  std::vector<WorkItem> expired;
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_ && queued_ == 0 && !device_busy_) return;
    const uint64_t now = static_cast<uint64_t>(ring::monotonic_ns());
    expire_locked(now, &expired);
    if (!expired.empty()) {
      lock.unlock();
      for (WorkItem& item : expired) {
        if (item.session->closed()) {
          state->stats.dropped_client_gone(item.model->id);
          continue;
        }
        answer_stopped(item, ErrorCode::kDeadlineExceeded, state->stats);
      }
      expired.clear();
      lock.lock();
      continue;
    }
    if (!device_busy_) {
      if (auto formed = take_batch_locked(now)) {
        set_busy_locked(true);
        lock.unlock();
        run_formed(*formed, *state);
        lock.lock();
        set_busy_locked(false);
        continue;
      }
    }
    const uint64_t next = next_event_locked(now);
    worker_sleeping_ = true;
    if (next == sched::kNever) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next)));
    }
    worker_sleeping_ = false;
  }
}

}  // namespace coproc::daemon
