// The client's request path: submit into the submission ring, drain the
// completion ring into requests, spin-then-sleep waits, the arena allocator.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <span>

#include "client_impl.h"
#include "coproc/coproc_generated.h"
#include "coproc/ring/wait.h"
#include "coproc/status.h"

namespace {

using coproc::client::RequestState;

// The longest single futex sleep of a waiting call: the daemon's liveness is
// checked at least this often, which bounds DAEMON_GONE detection (100 ms).
constexpr int64_t kWaitSliceNs = 10'000'000;
constexpr size_t kArenaAlignment = 64;
constexpr const char* kDaemonGone = "the daemon is gone (its control socket closed)";
// How long coproc_infer waits for a request it cancelled after its timeout.
constexpr int64_t kCancelGraceNs = 100'000'000;
constexpr const char* kStillInFlight = "request still in flight";

bool is_done(const coproc_request& r) {
  // acquire: pairs with the drainer's release store in drain_completions(),
  // making status, message, shapes and timing visible.
  return r.state.load(std::memory_order_acquire) == static_cast<uint32_t>(RequestState::kDone);
}

}  // namespace

bool coproc_client::in_arena(const void* ptr, uint64_t bytes) const {
  auto p = reinterpret_cast<uintptr_t>(ptr);
  auto base = reinterpret_cast<uintptr_t>(arena_);
  return p >= base && p - base <= arena_bytes_ && bytes <= arena_bytes_ - (p - base);
}

coproc_status coproc_client::submit(const coproc_model& model, const coproc_tensor* inputs,
                                    size_t n_inputs, const coproc_tensor* outputs,
                                    size_t n_outputs, const coproc_submit_options& options,
                                    coproc_request** out, std::string* message) {
  namespace fb = coproc::fb;
  if (n_inputs != model.inputs.size() || n_outputs != model.outputs.size()) {
    *message = "model '" + model.name + "' takes " + std::to_string(model.inputs.size()) +
               " inputs and " + std::to_string(model.outputs.size()) + " outputs, got " +
               std::to_string(n_inputs) + " and " + std::to_string(n_outputs);
    return COPROC_ERR_INVALID_ARGUMENT;
  }
  auto check_tensors = [&](const coproc_tensor* ts, size_t n, const char* what) {
    for (size_t i = 0; i < n; ++i) {
      if (ts[i].rank < 0 || ts[i].rank > COPROC_MAX_RANK) {
        *message = std::string(what) + " " + std::to_string(i) + ": rank " +
                   std::to_string(ts[i].rank) + " outside [0, 8]";
        return false;
      }
      if (!in_arena(ts[i].data, ts[i].bytes)) {
        *message = std::string(what) + " " + std::to_string(i) +
                   ": data is not inside this client's arena (use coproc_alloc)";
        return false;
      }
    }
    return true;
  };
  if (n_inputs > coproc::client::kMaxTensorsPerRequest ||
      n_outputs > coproc::client::kMaxTensorsPerRequest) {
    *message = "more than 16 inputs or outputs in one request";
    return COPROC_ERR_UNSUPPORTED;
  }
  if (!check_tensors(inputs, n_inputs, "input") || !check_tensors(outputs, n_outputs, "output")) {
    return COPROC_ERR_INVALID_ARGUMENT;
  }
  if (options.priority < COPROC_PRIORITY_CRITICAL || options.priority > COPROC_PRIORITY_LOW) {
    *message = "priority " + std::to_string(options.priority) + " is not a coproc_priority";
    return COPROC_ERR_INVALID_ARGUMENT;
  }

  std::lock_guard lock(submit_mu_);
  if (gone_.load(std::memory_order_relaxed)) {
    *message = kDaemonGone;
    return COPROC_ERR_DAEMON_GONE;
  }
  if (free_.empty()) {
    // Only on this slow path is liveness checked (a poll syscall): a caller
    // retrying WOULD_BLOCK against a dead daemon learns it here.
    if (daemon_gone()) {
      *message = kDaemonGone;
      return COPROC_ERR_DAEMON_GONE;
    }
    *message = "in-flight window full (" + std::to_string(pool_.size()) +
               " requests); complete some first";
    return COPROC_ERR_WOULD_BLOCK;
  }
  coproc_request& request = *pool_[free_.back()];

  bool reuse = template_.model == &model && template_.n_inputs == n_inputs &&
               template_.tensors.size() == n_inputs + n_outputs &&
               std::memcmp(template_.tensors.data(), inputs, n_inputs * sizeof(coproc_tensor)) == 0 &&
               std::memcmp(template_.tensors.data() + n_inputs, outputs,
                           n_outputs * sizeof(coproc_tensor)) == 0;
  if (!reuse) build_template(model, inputs, n_inputs, outputs, n_outputs);
  if (template_.bytes.size() > submissions_.max_payload()) {
    *message = "request of " + std::to_string(template_.bytes.size()) + " bytes exceeds the " +
               std::to_string(submissions_.max_payload()) + "-byte ring slot";
    return COPROC_ERR_INVALID_ARGUMENT;
  }
  std::span<std::byte> slot = submissions_.claim();
  if (slot.empty()) {
    if (daemon_gone()) {
      *message = kDaemonGone;
      return COPROC_ERR_DAEMON_GONE;
    }
    *message = submissions_.corrupt() ? "submission ring corrupt" : "submission ring full";
    return submissions_.corrupt() ? COPROC_ERR_INTERNAL : COPROC_ERR_WOULD_BLOCK;
  }
  std::memcpy(slot.data(), template_.bytes.data(), template_.bytes.size());
  // Every scalar is present (ForceDefaults), so the patches always succeed.
  request.collect = (options.flags & COPROC_SUBMIT_COLLECT) != 0;
  request.user_data = options.user_data;
  auto* wire = flatbuffers::GetMutableRoot<fb::Request>(slot.data());
  bool patched = wire->mutate_id(request.wire_id()) &&
                 wire->mutate_priority(static_cast<fb::Priority>(options.priority)) &&
                 wire->mutate_deadline_ns(options.deadline_ns);
  if (!patched) {
    *message = "request template lacks a scalar field";
    return COPROC_ERR_INTERNAL;
  }
  request.status = COPROC_OK;
  request.message.clear();
  request.n_outputs = static_cast<uint32_t>(n_outputs);
  // relaxed: the request is not visible to the drainer until publish()'s
  // release store hands the slot to the daemon.
  request.state.store(static_cast<uint32_t>(RequestState::kInFlight), std::memory_order_relaxed);
  COPROC_TSAN_RELEASE(&request);
  submissions_.publish(static_cast<uint32_t>(template_.bytes.size()));
  coproc::ring::notify(doorbell_page_->seq, registry_header_->poller_sleepers);
  free_.pop_back();
  *out = &request;
  return COPROC_OK;
}

// Caller holds submit_mu_. Output refs carry no shape: the daemon computes
// output shapes and checks only the reserved bytes.
void coproc_client::build_template(const coproc_model& model, const coproc_tensor* inputs,
                                   size_t n_inputs, const coproc_tensor* outputs, size_t n_outputs) {
  namespace fb = coproc::fb;
  auto make_refs = [&](const coproc_tensor* ts, size_t n, bool with_shape) {
    std::array<flatbuffers::Offset<fb::TensorRef>, coproc::client::kMaxTensorsPerRequest> refs;
    for (size_t i = 0; i < n; ++i) {
      flatbuffers::Offset<flatbuffers::Vector<int64_t>> shape;
      if (with_shape) shape = builder_.CreateVector(ts[i].shape, static_cast<size_t>(ts[i].rank));
      uint64_t offset = static_cast<uint64_t>(static_cast<const std::byte*>(ts[i].data) - arena_);
      refs[i] = fb::CreateTensorRef(builder_, 0, static_cast<fb::DType>(ts[i].dtype), shape,
                                    offset, ts[i].bytes);
    }
    return builder_.CreateVector(refs.data(), n);
  };
  builder_.Clear();
  auto in_refs = make_refs(inputs, n_inputs, true);
  auto out_refs = make_refs(outputs, n_outputs, false);
  fb::RequestBuilder rb(builder_);
  rb.add_id(0);
  rb.add_kind(fb::RequestKind::Infer);
  rb.add_model_id(model.id);
  rb.add_priority(fb::Priority::Normal);
  rb.add_deadline_ns(0);
  rb.add_inputs(in_refs);
  rb.add_outputs(out_refs);
  builder_.Finish(rb.Finish());
  template_.model = &model;
  template_.n_inputs = n_inputs;
  template_.tensors.assign(inputs, inputs + n_inputs);
  template_.tensors.insert(template_.tensors.end(), outputs, outputs + n_outputs);
  template_.bytes.assign(builder_.GetBufferPointer(), builder_.GetBufferPointer() + builder_.GetSize());
}

// Caller holds submit_mu_.
coproc_status coproc_client::push_message(const flatbuffers::FlatBufferBuilder& fbb,
                                          std::string* message) {
  if (fbb.GetSize() > submissions_.max_payload()) {
    *message = "request of " + std::to_string(fbb.GetSize()) + " bytes exceeds the " +
               std::to_string(submissions_.max_payload()) + "-byte ring slot";
    return COPROC_ERR_INVALID_ARGUMENT;
  }
  if (!submissions_.try_push(fbb.GetBufferPointer(), fbb.GetSize())) {
    if (daemon_gone()) {
      *message = kDaemonGone;
      return COPROC_ERR_DAEMON_GONE;
    }
    *message = submissions_.corrupt() ? "submission ring corrupt" : "submission ring full";
    return submissions_.corrupt() ? COPROC_ERR_INTERNAL : COPROC_ERR_WOULD_BLOCK;
  }
  // Wake the poller if it announced sleep. The doorbell's futex word is ours
  // to bump; the sleep announcement lives in the daemon-only registry.
  coproc::ring::notify(doorbell_page_->seq, registry_header_->poller_sleepers);
  return COPROC_OK;
}

bool coproc_client::drain_completions() {
  // relaxed test first: spinning waiters must not bounce the line with xchg.
  // acquire on the exchange pairs with the release store in unlock_drain():
  // the previous holder's consumer-state updates are visible to us.
  if (draining_.load(std::memory_order_relaxed) ||
      draining_.exchange(true, std::memory_order_acquire)) {
    return false;
  }
  drain_locked(/*signal=*/true);
  unlock_drain();
  return true;
}

void coproc_client::lock_drain() {
  // acquire: as in drain_completions(). A holder only pops what is in the ring.
  while (draining_.load(std::memory_order_relaxed) ||
         draining_.exchange(true, std::memory_order_acquire)) {
    coproc::ring::cpu_relax();
  }
}

void coproc_client::unlock_drain() {
  // release: publishes our consumer-state updates to the next holder.
  draining_.store(false, std::memory_order_release);
}

void coproc_client::drain_locked(bool signal) {
  namespace fb = coproc::fb;
  if (completions_.empty()) return;
  const bool armed = signal && event_armed_.load(std::memory_order_relaxed);
  // Collectable completions, appended to ready_ a few at a time.
  std::array<uint64_t, 64> spill;
  size_t n_spill = 0;
  auto flush_spill = [&] {
    if (n_spill == 0) return;
    std::lock_guard lock(ready_mu_);
    const bool was_empty = ready_.empty();
    if (ready_.size() + n_spill > 2 * pool_.size()) {
      std::erase_if(ready_, [&](uint64_t id) {
        const coproc_request& r = *pool_[static_cast<uint32_t>(id)];
        return !r.matches(id);
      });
    }
    ready_.insert(ready_.end(), spill.begin(), spill.begin() + static_cast<std::ptrdiff_t>(n_spill));
    n_spill = 0;
    if (armed && was_empty) signal_event_fd();  // E1
  };
  uint32_t bytes = 0;
  while (completions_.try_pop(completion_buffer_, &bytes) ==
         coproc::ring::RingConsumer::Pop::kOk) {
    // The daemon is trusted by its clients (it could already write anything
    // into this segment); the id is still bounds-checked before use.
    const auto* c = flatbuffers::GetRoot<fb::Completion>(completion_buffer_.data());
    uint64_t id = c->id();
    uint32_t index = static_cast<uint32_t>(id);
    if (index >= pool_.size()) continue;
    coproc_request& r = *pool_[index];
    COPROC_TSAN_ACQUIRE(&r);
    if (!r.matches(id) ||
        r.state.load(std::memory_order_relaxed) != static_cast<uint32_t>(RequestState::kInFlight)) {
      continue;  // a late completion of a released request
    }
    r.status = static_cast<coproc_status>(c->status());  // same values: coproc/status.h, c_api.cc
    if (c->message()) r.message = c->message()->str();
    if (const auto* shapes = c->output_shapes()) {
      uint32_t count = std::min<uint32_t>(shapes->size(), coproc::client::kMaxTensorsPerRequest);
      for (uint32_t i = 0; i < count; ++i) {
        const auto* dims = shapes->Get(i)->dims();
        int32_t rank = dims ? static_cast<int32_t>(std::min<uint32_t>(dims->size(), COPROC_MAX_RANK)) : 0;
        r.output_rank[i] = rank;
        for (int32_t d = 0; d < rank; ++d) r.output_shape[i][d] = dims->Get(d);
      }
    }
    if (const auto* t = c->timing()) {
      r.timing = {t->queue_ns(), t->exec_ns(), t->batch_size(),
                  static_cast<coproc_device>(t->device())};
    }
    const bool collect = r.collect;
    // seq_cst (a release for is_done()'s acquire, and one half of a Dekker
    // pair with abandon(): at least one of the two sees the other's store,
    // so an abandoned request is always freed).
    r.state.store(static_cast<uint32_t>(RequestState::kDone), std::memory_order_seq_cst);
    if (collect) {
      spill[n_spill++] = id;
      if (n_spill == spill.size()) flush_spill();
    } else if (r.abandoned.load(std::memory_order_seq_cst)) {
      std::lock_guard lock(submit_mu_);
      release_locked(r);
    }
  }
  flush_spill();
}

void coproc_client::signal_event_fd() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof(one));  // non-blocking
}

void coproc_client::reset_event_fd() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(event_fd_, &count, sizeof(count));  // non-blocking
}

size_t coproc_client::collect(coproc_request** out, size_t capacity) {
  lock_drain();
  size_t n = 0;
  const bool armed = event_armed_.load(std::memory_order_relaxed);
  for (;;) {
    drain_locked(/*signal=*/false);  // this call settles the fd itself, below
    bool more = false;
    {
      // submit_mu_: a release on another thread and this hand-out never interleave, so a
      // request released before it was collected is never handed out (its generation moved on).
      std::lock_guard submit_lock(submit_mu_);
      std::lock_guard ready_lock(ready_mu_);
      while (n < capacity && !ready_.empty()) {
        const uint64_t id = ready_.front();
        ready_.pop_front();
        coproc_request& r = *pool_[static_cast<uint32_t>(id)];
        if (r.matches(id) && is_done(r)) out[n++] = &r;
      }
      more = !ready_.empty();
    }
    if (more) {
      if (armed) signal_event_fd();  // E1: the caller did not take them all
      break;
    }
    if (!armed) break;
    reset_event_fd();                 // E2
    if (completions_.empty()) break;  // anything pushed after the reset signals again
  }
  unlock_drain();
  return n;
}

coproc_status coproc_client::wait(coproc_request& request, int64_t timeout_ns,
                                  std::string* message) {
  coproc_request* one = &request;
  coproc_status s = poll(&one, 1, timeout_ns, nullptr, message);
  if (s != COPROC_OK) return s;
  if (request.status != COPROC_OK) *message = request.message;
  return request.status;
}

coproc_status coproc_client::poll(coproc_request* const* requests, size_t n, int64_t timeout_ns,
                                  size_t* out_done, std::string* message) {
  auto count_done = [&] {
    size_t done = 0;
    for (size_t i = 0; i < n; ++i) done += is_done(*requests[i]) ? 1 : 0;
    return done;
  };
  auto ready = [&] {
    drain_completions();
    return count_done() > 0;
  };
  if (count_done() == 0 && gone_.load(std::memory_order_relaxed)) {
    drain_completions();  // results that landed before the daemon died still count
    if (count_done() == 0) {
      *message = kDaemonGone;
      return COPROC_ERR_DAEMON_GONE;
    }
  }
  coproc::ring::WaitPolicy policy{spin_ns_, timeout_ns, kWaitSliceNs};
  auto outcome = coproc::ring::wait_until(header_->completion_seq, header_->completion_sleepers,
                                          ready, [this] { return !daemon_gone(); }, policy);
  if (out_done) *out_done = count_done();
  switch (outcome) {
    case coproc::ring::WaitOutcome::kReady:
      return COPROC_OK;
    case coproc::ring::WaitOutcome::kTimedOut:
      // A completion may have landed between the last check and the clock.
      if (ready()) {
        if (out_done) *out_done = count_done();
        return COPROC_OK;
      }
      *message = "timed out after " + std::to_string(timeout_ns) + " ns";
      return COPROC_ERR_TIMEOUT;
    case coproc::ring::WaitOutcome::kAborted:
      break;
  }
  *message = kDaemonGone;
  return COPROC_ERR_DAEMON_GONE;
}

coproc_status coproc_client::cancel(coproc_request& request, std::string* message) {
  namespace fb = coproc::fb;
  if (!is_done(request)) drain_completions();  // completed but not yet read: nothing to cancel
  if (is_done(request)) return COPROC_OK;
  std::lock_guard lock(submit_mu_);
  if (gone_.load(std::memory_order_relaxed)) {
    *message = kDaemonGone;
    return COPROC_ERR_DAEMON_GONE;
  }
  builder_.Clear();
  fb::RequestBuilder rb(builder_);
  rb.add_kind(fb::RequestKind::Cancel);
  rb.add_target_id(request.wire_id());
  builder_.Finish(rb.Finish());
  return push_message(builder_, message);
}

coproc_status coproc_client::release(coproc_request& request, std::string* message) {
  if (!is_done(request)) {
    *message = "request still in flight: cancel and wait before releasing it";
    return COPROC_ERR_IN_FLIGHT;
  }
  std::lock_guard lock(submit_mu_);
  release_locked(request);
  return COPROC_OK;
}

void coproc_client::release_locked(coproc_request& request) {
  if (request.state.load(std::memory_order_relaxed) != static_cast<uint32_t>(RequestState::kDone)) {
    return;  // already freed (abandon and the drainer may both try)
  }
  // Late duplicates of the old id no longer match. One writer (under
  // submit_mu_), so a load and a store, not a locked add.
  request.generation.store(request.gen() + 1, std::memory_order_relaxed);
  request.abandoned.store(false, std::memory_order_relaxed);
  request.state.store(static_cast<uint32_t>(RequestState::kFree), std::memory_order_relaxed);
  free_.push_back(request.index);
}

void coproc_client::abandon(coproc_request& request) {
  std::lock_guard lock(submit_mu_);
  // seq_cst: the other half of the Dekker pair in drain_completions().
  request.abandoned.store(true, std::memory_order_seq_cst);
  if (request.state.load(std::memory_order_seq_cst) == static_cast<uint32_t>(RequestState::kDone)) {
    release_locked(request);
  }
}

coproc_status coproc_client::infer(const coproc_model& model, const coproc_tensor* inputs,
                                   size_t n_inputs, coproc_tensor* outputs, size_t n_outputs,
                                   int64_t timeout_ns, std::string* message) {
  coproc_submit_options options;
  coproc_submit_options_init(&options);
  coproc_request* request = nullptr;
  coproc_status s = submit(model, inputs, n_inputs, outputs, n_outputs, options, &request, message);
  if (s != COPROC_OK) return s;
  s = wait(*request, timeout_ns, message);
  if (s == COPROC_ERR_TIMEOUT) return cancel_after_timeout(*request, message);
  if (s == COPROC_ERR_DAEMON_GONE) {
    abandon(*request);
    return s;
  }
  if (s == COPROC_OK) {
    std::string unused;  // a completed, OK request has every shape
    for (size_t i = 0; i < n_outputs; ++i) {
      output_shape(*request, i, &outputs[i].rank, outputs[i].shape, &unused);
    }
  }
  std::string unused;  // the request is done: releasing it cannot fail
  release(*request, &unused);
  return s;
}

// Cancel it and give it a short grace to complete, so its buffers are normally no longer
// written after we return; if even that runs out, it is abandoned (freed when its completion
// arrives), never waited on without bound. *message holds the timeout's message on entry.
coproc_status coproc_client::cancel_after_timeout(coproc_request& request, std::string* message) {
  std::string unused;  // a cancel that cannot be sent shows as the grace's outcome
  cancel(request, &unused);
  std::string grace_message;
  const coproc_status after = wait(request, kCancelGraceNs, &grace_message);
  if (after == COPROC_ERR_TIMEOUT) {
    abandon(request);
    *message +=
        "; the cancelled request had not completed 100 ms later: its outputs may still "
        "be written once";
    return COPROC_ERR_IN_FLIGHT;
  }
  if (after == COPROC_ERR_DAEMON_GONE) {
    abandon(request);
    *message = std::move(grace_message);
    return after;
  }
  release(request, &unused);  // done: cannot fail
  return COPROC_ERR_TIMEOUT;
}

bool coproc_client::completed(const coproc_request& request) {
  if (is_done(request)) return true;
  drain_completions();
  return is_done(request);
}

coproc_status coproc_client::output_shape(const coproc_request& request, size_t index,
                                          int32_t* out_rank, int64_t out_shape[COPROC_MAX_RANK],
                                          std::string* message) {
  if (!completed(request)) {
    *message = kStillInFlight;
    return COPROC_ERR_IN_FLIGHT;
  }
  if (request.status != COPROC_OK) {
    *message = request.message;
    return request.status;
  }
  if (index >= request.n_outputs) {
    *message = "output index " + std::to_string(index) + " out of range";
    return COPROC_ERR_NOT_FOUND;
  }
  *out_rank = request.output_rank[index];
  for (int32_t d = 0; d < COPROC_MAX_RANK; ++d) {
    out_shape[d] = d < *out_rank ? request.output_shape[index][d] : 0;
  }
  return COPROC_OK;
}

coproc_status coproc_client::timing(const coproc_request& request, coproc_timing* out,
                                    std::string* message) {
  if (!is_done(request)) {
    *message = kStillInFlight;
    return COPROC_ERR_IN_FLIGHT;
  }
  *out = request.timing;
  return COPROC_OK;
}

coproc_model* coproc_client::find_model(std::string_view name) {
  for (auto& m : models_) {
    if (m->name == name) return m.get();
  }
  return nullptr;
}

coproc_status coproc_client::alloc(size_t bytes, void** out, std::string* message) {
  std::lock_guard lock(alloc_mu_);
  void* p = allocator_->allocate_aligned(std::max<size_t>(bytes, 1), kArenaAlignment, std::nothrow);
  if (!p) {
    *message = "arena exhausted: " + std::to_string(bytes) + " bytes requested, " +
               std::to_string(allocator_->get_free_memory()) + " free of " +
               std::to_string(arena_bytes_);
    return COPROC_ERR_NO_MEMORY;
  }
  allocations_.insert(p);
  *out = p;
  return COPROC_OK;
}

coproc_status coproc_client::free(void* ptr, std::string* message) {
  std::lock_guard lock(alloc_mu_);
  if (allocations_.erase(ptr) == 0) {
    *message = "pointer was not returned by coproc_alloc on this client";
    return COPROC_ERR_INVALID_ARGUMENT;
  }
  allocator_->deallocate(ptr);
  return COPROC_OK;
}

coproc_status coproc_client::event_fd(int* out_fd, std::string*) {
  if (!event_armed_.load(std::memory_order_relaxed)) {
    lock_drain();
    if (!event_armed_.load(std::memory_order_relaxed)) {
      // relaxed, then the fence: pairs with the daemon's fence in
      // ring::notify(), which it makes before reading the flag (E4).
      header_->eventfd_armed.store(1, std::memory_order_relaxed);
      coproc::ring::detail::seq_cst_fence();
      event_armed_.store(true, std::memory_order_relaxed);
      drain_locked(/*signal=*/true);
      std::lock_guard lock(ready_mu_);
      if (!ready_.empty()) signal_event_fd();  // completions that came before the fd
    }
    unlock_drain();
  }
  *out_fd = event_fd_;
  return COPROC_OK;
}
