// The batcher's queue side (batcher.h): admitting what the poller hands over, the slots of
// queued requests, cancel and expiry, forming batches (and the chunks of a request) and the
// worker loop that takes them. Running a batch and answering its requests is batcher_run.cc.
#include "dispatch/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "dispatch/batch_io.h"
#include "dispatch/dispatcher_state.h"
#include "device/cpu/cpu_session.h"
#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {

bool variable_dim1(const std::vector<int64_t>& dims) { return dims.size() >= 2 && dims[1] < 0; }

}  // namespace

// Activation memory of a batch, for the scheduler's memory cap: one row is
// planned at the padded length (inputs, outputs and the plan's scratch) and
// scaled by the rows. Called under mu_, from inside scheduler calls.
class MemoryEstimate {
 public:
  MemoryEstimate(const LoadedModel& model, std::vector<bool> input_dim1)
      : model_(model), input_dim1_(std::move(input_dim1)), session_(model.model) {}

  uint64_t operator()(uint32_t rows, int64_t padded_length) {
    auto [it, fresh] = per_row_.try_emplace(padded_length, 0);
    if (fresh) it->second = per_row(padded_length);
    return it->second * rows;
  }

 private:
  uint64_t per_row(int64_t padded_length) {
    const auto& specs = model_.model->inputs();
    std::vector<runtime::Shape> shapes;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      runtime::Shape shape = runtime::concrete_shape(specs[i], 1);  // one row
      if (input_dim1_[i]) shape.dims[1] = std::max<int64_t>(padded_length, 1);
      shapes.push_back(shape);
    }
    auto plan = session_.prepare(shapes);
    if (!plan.ok()) return kUnplannable;
    return (*plan)->peak_bytes();  // inputs, outputs and the plan's scratch
  }

  // A length the model cannot plan for counts as too big for any cap.
  static constexpr uint64_t kUnplannable = uint64_t{1} << 50;

  const LoadedModel& model_;
  std::vector<bool> input_dim1_;
  runtime::CpuSession session_;
  std::map<int64_t, uint64_t> per_row_;
};

Batcher::Batcher(const ModelSet& models, Registry& registry, std::vector<sched::Policy> policies,
                 int64_t inline_max_ns, uint64_t request_memory_bytes, uint32_t max_request_rows)
    : models_(models),
      registry_(registry),
      inline_max_ns_(inline_max_ns),
      request_memory_bytes_(request_memory_bytes),
      max_request_rows_(max_request_rows) {
  COPROC_CHECK(policies.size() == models.size());
  for (const auto& m : models.all()) {
    bool other_dynamic = false;
    // Chunks cut every input and output at dim 0, so each must have a dynamic dim 0 (the
    // batch): an output whose dim 0 is fixed, or follows another input dim, has no row offset
    // in the client's buffer.
    bool batch_dim0 = true;
    for (const auto& spec : m.model->inputs()) {
      for (std::size_t d = 2; d < spec.dims.size(); ++d) other_dynamic |= spec.dims[d] < 0;
      batch_dim0 &= !spec.dims.empty() && spec.dims[0] < 0;
    }
    for (const auto& spec : m.model->outputs()) batch_dim0 &= !spec.dims.empty() && spec.dims[0] < 0;
    if (other_dynamic && policies[m.id].max_batch > 1) {
      spdlog::warn("model '{}' has a dynamic dim beyond dim 1: batching off (max_batch 1)", m.name);
    }
    const bool chunkable = batch_dim0 && !other_dynamic;
    const sched::Policy policy = effective_policy(other_dynamic, chunkable, policies[m.id]);
    std::vector<bool> input_dim1, output_dim1;
    for (const auto& spec : m.model->inputs()) input_dim1.push_back(variable_dim1(spec.dims));
    for (const auto& spec : m.model->outputs()) output_dim1.push_back(variable_dim1(spec.dims));
    sched::MemoryEstimator estimator;
    if (policy.memory_limit_bytes > 0) {
      estimator = [e = std::make_shared<MemoryEstimate>(m, input_dim1)](uint32_t rows, int64_t len) {
        return (*e)(rows, len);
      };
    }
    auto state = std::make_unique<ModelState>(policy, std::move(estimator));
    state->one_per_batch = other_dynamic;
    state->chunkable = chunkable;
    state->input_dim1 = input_dim1;
    state->output_dim1 = output_dim1;
    for (std::size_t i = 0; i < input_dim1.size() && state->length_input < 0; ++i) {
      if (input_dim1[i]) state->length_input = static_cast<int>(i);
    }
    states_.push_back(std::move(state));
    wire::ModelStats& settings = stats(m.id, 0);
    settings.gpu_from_batch.store(m.gpu_from_batch, std::memory_order_relaxed);
    const wire::DeviceMode mode = m.device == "gpu"    ? wire::DeviceMode::kGpu
                                  : m.device == "auto" ? wire::DeviceMode::kAuto
                                                       : wire::DeviceMode::kCpu;
    settings.device_mode.store(static_cast<uint64_t>(mode), std::memory_order_relaxed);
  }
  poller_state_ = make_thread_state(0);
}

Batcher::~Batcher() { stop(); }

std::unique_ptr<Batcher::ThreadState> Batcher::make_thread_state(uint32_t writer) const {
  auto state = std::make_unique<ThreadState>();
  for (const auto& m : models_.all()) {
    const runtime::SessionLimits limits{kMaxPlansPerSession, request_memory_bytes_};
    state->sessions.push_back(std::make_unique<runtime::CpuSession>(m.model, limits));
    state->cl_sessions.push_back(m.cl != nullptr ? std::make_unique<runtime::ClSession>(m.cl, limits)
                                                 : nullptr);
  }
  state->writer = writer;
  return state;
}

void Batcher::start() {
  worker_ = std::thread([this] { worker_loop(); });
}

void Batcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool Batcher::idle() const {
  std::lock_guard lock(mu_);
  return queued_ == 0 && !device_busy_;
}

sched::Policy Batcher::effective_policy(bool one_per_batch, bool chunkable, sched::Policy policy) {
  if (one_per_batch) {
    policy.max_batch = 1;
    policy.min_batch = 1;
    policy.preferred_batch_sizes.clear();
  }
  policy.chunk_requests = chunkable;
  return policy;
}

void Batcher::set_policy(uint32_t model_id, sched::Policy policy) {
  {
    std::lock_guard lock(mu_);
    const ModelState& state = *states_[model_id];
    policy = effective_policy(state.one_per_batch, state.chunkable, std::move(policy));
    states_[model_id]->scheduler.set_policy(policy);
    states_[model_id]->policy = std::move(policy);
  }
  cv_.notify_all();
}

bool Batcher::variable_length(uint32_t model_id) const { return states_[model_id]->length_input >= 0; }

int64_t Batcher::request_length(const ModelState& state, const WorkItem& item) const {
  if (state.length_input < 0) return 0;
  const runtime::Shape& s = item.input_shapes[static_cast<std::size_t>(state.length_input)];
  return s.rank > 1 ? s.dims[1] : 0;
}

bool Batcher::check_shapes(const ModelState& state, const WorkItem& item, std::string* problem) const {
  const auto& specs = item.model->model->inputs();
  const int64_t rows = request_rows(item);
  const int64_t length = request_length(state, item);
  // Runs for every request: the message is only built when a check fails.
  auto refuse = [&](uint32_t i, const std::string& what) {
    *problem = "input '" + specs[i].name + "' " + what;
    return false;
  };
  for (uint32_t i = 0; i < item.n_inputs; ++i) {
    const runtime::Shape& s = item.input_shapes[i];
    const auto& dims = specs[i].dims;
    if (s.rank != static_cast<int32_t>(dims.size())) {
      return refuse(i, "has rank " + std::to_string(s.rank) + ", model expects " + std::to_string(dims.size()));
    }
    for (int32_t d = 0; d < s.rank; ++d) {
      const int64_t want = dims[static_cast<std::size_t>(d)];
      if (d == 0 && s.dims[0] != rows) {
        return refuse(i, "has batch dim " + std::to_string(s.dims[0]) + ", input 0 has " + std::to_string(rows));
      }
      if (d == 1 && state.input_dim1[i] && s.dims[1] != length) {
        return refuse(i, "has length " + std::to_string(s.dims[1]) + ", another input has " + std::to_string(length));
      }
      if (d > 0 && want >= 0 && s.dims[d] != want) {
        return refuse(i, "of shape " + s.to_string() + ": dim " + std::to_string(d) + " must be " + std::to_string(want));
      }
    }
  }
  if (rows < 1) {
    *problem = "a request needs at least one row";
    return false;
  }
  return true;
}

ErrorCode Batcher::admission_problem(const ModelState& state, const WorkItem& item,
                                     std::string* problem) const {
  if (!check_shapes(state, item, problem)) return ErrorCode::kInvalidArgument;
  const int64_t rows = request_rows(item);
  if (rows > static_cast<int64_t>(max_request_rows_)) {
    // Legal but over the operator's cap, like limits.request_memory: split it.
    *problem = "request of " + std::to_string(rows) + " rows is over limits.max_request_rows (" +
               std::to_string(max_request_rows_) + ")";
    return ErrorCode::kResourceExhausted;
  }
  return ErrorCode::kOk;
}

bool Batcher::fast_path_allowed_locked(const WorkItem& item) const {
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

void Batcher::submit_pass(std::span<WorkItem> items, uint64_t now_ns) {
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
    const ErrorCode refused_with = admission_problem(*states_[item.model->id], item, &problem);
    if (refused_with != ErrorCode::kOk) {
      bump(stats(item.model->id, 0).rejected_invalid);
      answer(item, refused_with, problem, 0);
    } else {
      bump(stats(item.model->id, 0).accepted);
      run_single(item, *poller_state_);
    }
    std::lock_guard lock(mu_);
    set_busy_locked(false);
    if (queued_ > 0 && worker_sleeping_) cv_.notify_one();
  } else if (wake_worker) {
    // Read under the lock after admitting: the worker either saw the new work
    // before it slept, or had announced its sleep and gets this notify.
    cv_.notify_one();
  }
  for (auto& [item, error] : refused) answer(item, error.code, error.message, 0);
}

void Batcher::admit_locked(WorkItem& item, uint64_t now_ns,
                           std::vector<std::pair<WorkItem, Error>>* refused) {
  const uint32_t model_id = item.model->id;
  ModelState& state = *states_[model_id];
  wire::ModelStats& st = stats(model_id, 0);
  std::string problem;
  const ErrorCode refused_with = admission_problem(state, item, &problem);
  if (refused_with != ErrorCode::kOk) {
    bump(st.rejected_invalid);  // refused at admission: a bad shape or over a limit
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
  r.length = request_length(state, item);
  r.deadline_ns = item.deadline_ns;
  r.arrival_ns = now_ns;
  if (state.scheduler.admit(r, now_ns) == sched::Admit::kQueueFull) {
    free_tickets_.push_back(ticket);
    bump(st.rejected_queue_full);
    refused->emplace_back(item, make_error(ErrorCode::kResourceExhausted,
                                           "queue of model '" + item.model->name + "' is full (" +
                                               std::to_string(state.policy.queue_limit) + " requests)"));
    return;
  }
  bump(st.accepted);
  WorkItem& slot = slab_[ticket].item;
  slot = item;
  slot.keep_alive = item.session->shared_from_this();  // the client may die while it waits
  ++queued_;
  publish_depth_locked(model_id);
}

void Batcher::publish_depth_locked(uint32_t model_id) {
  auto depth = states_[model_id]->scheduler.queued_by_priority();
  wire::ModelStats& st = stats(model_id, 0);
  for (std::size_t p = 0; p < depth.size(); ++p) {
    st.queue_depth[p].store(depth[p], std::memory_order_relaxed);  // a gauge, stored under mu_
  }
}

void Batcher::cancel(ClientSession& session, uint64_t id) {
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
  answer_stopped(cancelled, ErrorCode::kCancelled, 0);
}

void Batcher::release_slot_locked(uint64_t ticket) {
  slab_[ticket] = Slot{};
  free_tickets_.push_back(ticket);
  --queued_;
}

std::optional<WorkItem> Batcher::withdraw_locked(uint64_t ticket, ErrorCode code) {
  Slot& slot = slab_[ticket];
  if (slot.chunk_running) {
    slot.stop = code;
    return std::nullopt;
  }
  WorkItem item = std::move(slot.item);
  release_slot_locked(ticket);
  return item;
}

void Batcher::expire_locked(uint64_t now_ns, std::vector<WorkItem>* expired) {
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

uint64_t Batcher::next_event_locked(uint64_t now_ns) const {
  uint64_t next = sched::kNever;
  for (const auto& s : states_) next = std::min(next, s->scheduler.next_event_ns(now_ns));
  return next;
}

WorkItem Batcher::chunk_of(const WorkItem& request, uint64_t ticket, const sched::Slice& slice) {
  WorkItem chunk = request;
  const auto& specs = request.model->model->inputs();
  for (uint32_t i = 0; i < request.n_inputs; ++i) {
    runtime::Shape& shape = chunk.input_shapes[i];  // rank >= 1: the model is chunkable
    const auto row_bytes = static_cast<std::size_t>(shape.elements() / shape.dims[0]) *
                           runtime::dtype_bytes(specs[i].dtype);
    chunk.inputs[i] = static_cast<const std::byte*>(request.inputs[i]) + slice.first_row * row_bytes;
    shape.dims[0] = slice.rows;
  }
  chunk.chunk.ticket = ticket;
  chunk.chunk.first_row = slice.first_row;
  chunk.chunk.total_rows = request_rows(request);
  chunk.chunk.last = slice.last;
  return chunk;
}

std::optional<Batcher::Formed> Batcher::take_batch_locked(uint64_t now_ns) {
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

void Batcher::worker_loop() {
  std::unique_ptr<ThreadState> state = make_thread_state(1);
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
          bump(stats(item.model->id, 1).dropped_client_gone);
          continue;
        }
        answer_stopped(item, ErrorCode::kDeadlineExceeded, 1);
      }
      expired.clear();
      lock.lock();
      continue;
    }
    if (!device_busy_) {
      if (auto formed = take_batch_locked(now)) {
        set_busy_locked(true);
        lock.unlock();
        run_batch(*formed, *state);
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
