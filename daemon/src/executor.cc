#include "executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "completion.h"
#include "cycle_clock.h"
#include "coproc/ring/wait.h"

namespace coproc::daemon {

Executor::Executor(const ModelSet& models, int64_t inline_max_ns)
    : models_(models), inline_max_ns_(inline_max_ns), poller_state_(make_thread_state()) {}

Executor::~Executor() { stop(); }

Executor::ThreadState Executor::make_thread_state() const {
  ThreadState state;
  for (const auto& m : models_.all()) {
    state.sessions.push_back(std::make_unique<runtime::Session>(m.model));
  }
  return state;
}

void Executor::start() {
  worker_ = std::thread([this] { worker_loop(); });
}

void Executor::dispatch(WorkItem& item) {
  int64_t batch = item.input_shapes[0].rank > 0 ? item.input_shapes[0].dims[0] : 1;
  bool cheap = item.model->batch1_exec_ns * std::max<int64_t>(batch, 1) <= inline_max_ns_;
  if (!cheap) {
    std::lock_guard lock(mu_);
    queue_.push_back(item);
    queue_.back().keep_alive = item.session->shared_from_this();
    cv_.notify_one();
    return;
  }
  // Cheap work never waits behind an expensive request on the executor: the
  // two threads use separate runtime Sessions and may run at the same time.
  execute(item, poller_state_, CycleClock::now());
}

bool Executor::cancel(const ClientSession& session, uint64_t target_id) {
  WorkItem cancelled;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(queue_.begin(), queue_.end(), [&](const WorkItem& w) {
      return w.session == &session && w.id == target_id;
    });
    if (it == queue_.end()) return false;
    cancelled = std::move(*it);
    queue_.erase(it);
  }
  send_error(*cancelled.session, cancelled.id, ErrorCode::kCancelled, "cancelled before it ran");
  return true;
}

bool Executor::idle() const {
  std::lock_guard lock(mu_);
  return queue_.empty() && !running_item_;
}

void Executor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Executor::worker_loop() {
  ThreadState state = make_thread_state();
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued is done
    WorkItem item = std::move(queue_.front());
    queue_.pop_front();
    running_item_ = true;
    lock.unlock();
    execute(item, state, CycleClock::now());
    lock.lock();
    running_item_ = false;
  }
}

void Executor::execute(WorkItem& item, ThreadState& state, uint64_t start_ticks) {
  ClientSession& client = *item.session;
  if (client.closed()) return;  // its client died: drop, nobody waits for it
  // Deadlines are absolute CLOCK_MONOTONIC: read that clock only for them.
  if (item.deadline_ns != 0 && static_cast<uint64_t>(ring::monotonic_ns()) >= item.deadline_ns) {
    send_error(client, item.id, ErrorCode::kDeadlineExceeded, "deadline passed before execution");
    return;
  }
  runtime::Session& session = *state.sessions[item.model->id];
  auto plan = session.prepare({item.input_shapes.data(), item.n_inputs});
  if (!plan.ok()) {
    send_error(client, item.id, plan.error().code, plan.error().message);
    return;
  }
  std::array<runtime::Shape, kMaxTensorsPerRequest> out_shapes;
  for (uint32_t j = 0; j < item.n_outputs; ++j) {
    out_shapes[j] = (*plan)->output_shape(j);
    uint64_t need = static_cast<uint64_t>(out_shapes[j].elements()) *
                    runtime::dtype_bytes(item.model->model->outputs()[j].dtype);
    if (item.output_bytes[j] < need) {
      send_error(client, item.id, ErrorCode::kInvalidArgument,
                 "output '" + item.model->model->outputs()[j].name + "' of shape " +
                     out_shapes[j].to_string() + " needs " + std::to_string(need) +
                     " bytes, request reserved " + std::to_string(item.output_bytes[j]));
      return;
    }
  }
  // Batch of one: the model reads and writes the client's arena directly.
  Status run = session.run(**plan, {item.inputs.data(), item.n_inputs},
                           {item.outputs.data(), item.n_outputs});
  uint64_t end_ticks = CycleClock::now();
  if (!run.ok()) {
    spdlog::warn("model '{}' failed for client {}: {}", item.model->name, client.id(),
                 run.error().message);
    send_error(client, item.id, run.error().code, run.error().message);
    return;
  }
  int64_t batch = item.input_shapes[0].rank > 0 ? item.input_shapes[0].dims[0] : 1;
  send_completion(client, item.id, ErrorCode::kOk, {}, {out_shapes.data(), item.n_outputs},
                  {CycleClock::to_ns(start_ticks - item.received_ticks),
                   CycleClock::to_ns(end_ticks - start_ticks), static_cast<uint32_t>(batch)});
}

}  // namespace coproc::daemon
