#include "ingest/poller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "coproc/ring/wait.h"
#include "ingest/completion.h"
#include "models/models.h"
#include "platform/cycle_clock.h"

namespace coproc::daemon {

namespace {
// Messages taken from one client per pass, so a flooding client cannot hold
// the poller while others wait.
constexpr int kBurstPerClient = 32;
// Requests handed to the dispatcher at once at most (the pass buffer's size).
constexpr std::size_t kMaxPass = 256;
// The poller sleeps until woken: no timeout, no slice (no periodic wake-ups).
constexpr int64_t kSleepForever = -1;
}  // namespace

Poller::Poller(Registry& registry, SessionTable& sessions, Dispatcher& dispatcher,
               const ModelSet& models, int64_t spin_ns, BrokenClient on_broken)
    : registry_(registry),
      sessions_(sessions),
      dispatcher_(dispatcher),
      models_(models),
      stats_(registry, kPollerWriter),
      spin_ns_(spin_ns),
      on_broken_(std::move(on_broken)),
      pass_(kMaxPass) {}

Poller::~Poller() {
  request_stop();
  join();
}

void Poller::start() {
  thread_ = std::thread([this] { loop(); });
}

void Poller::request_stop() {
  // release: pairs with the acquire load in loop(); then wake the thread.
  stop_.store(true, std::memory_order_release);
  registry_.ring_doorbell();
}

void Poller::join() {
  if (thread_.joinable()) thread_.join();
}

bool Poller::any_pending() {
  for (const auto& s : snapshot_) {
    if (!s->closed() && (!s->submissions().empty() || s->overflowed())) return true;
  }
  return false;
}

bool Poller::drain_once() {
  if (sessions_.generation() != snapshot_generation_) {
    snapshot_generation_ = sessions_.snapshot(&snapshot_);
  }
  bool did_work = false;
  for (const auto& session : snapshot_) {
    if (session->closed()) continue;
    if (session->overflowed()) {
      // Its completion ring was full when a result was ready: it submitted
      // past its in-flight window (ring_slots) and does not read. Closed now,
      // its queued work is dropped instead of run for nobody.
      session->close();
      on_broken_(session->id(),
                 fmt::format("its completion ring overflowed ({} completion(s) dropped): it "
                             "submits past its in-flight window and does not read",
                             session->dropped_completions()));
      did_work = true;
      continue;
    }
    auto& ring = session->submissions();
    if (slot_copy_.size() < ring.max_payload()) slot_copy_.resize(ring.max_payload());
    uint64_t now = 0;  // read once per burst
    for (int i = 0; i < kBurstPerClient; ++i) {
      uint32_t bytes = 0;
      auto popped = ring.try_pop(slot_copy_, &bytes);
      if (popped == ring::RingConsumer::Pop::kEmpty) break;
      if (popped == ring::RingConsumer::Pop::kCorrupt) {
        session->close();
        on_broken_(session->id(), "its submission ring is corrupt");
        break;
      }
      did_work = true;
      if (now == 0) now = CycleClock::now();
      if (pass_size_ == kMaxPass) flush_pass();
      switch (parse_request({slot_copy_.data(), bytes}, *session, models_, now, &parsed_,
                            &pass_[pass_size_])) {
        case ParseKind::kWork:
          session->count_request();
          ++pass_size_;
          break;
        case ParseKind::kCancel:
          flush_pass();  // the target may be in this pass
          dispatcher_.cancel(*session, parsed_.cancel.target_id);
          break;
        case ParseKind::kRejected:
          report_rejection(*session, parsed_.rejection);
          break;
      }
    }
  }
  flush_pass();
  return did_work;
}

void Poller::flush_pass() {
  if (pass_size_ == 0) return;
  dispatcher_.submit_pass({pass_.data(), pass_size_}, static_cast<uint64_t>(ring::monotonic_ns()));
  pass_size_ = 0;
}

void Poller::report_rejection(ClientSession& session, const Rejection& rejection) {
  if (rejection.id_known) {
    session.count_request();  // it is answered, so it counts as the client's request
    spdlog::debug("client {}: request {} rejected: {}", session.id(), rejection.id,
                  rejection.message);
    // A shape refusal is counted as refused before its answer leaves and as completed after,
    // like every answer of the model's.
    const LoadedModel* counted = rejection.counted_against;
    if (counted != nullptr) stats_.rejected_invalid(counted->id);
    send_error(session, rejection.id, rejection.code, rejection.message);
    if (counted != nullptr) stats_.completed(counted->id, rejection.code);
  } else {
    garbage_log_.log(static_cast<uint64_t>(ring::monotonic_ns()) / 1'000'000,
                     fmt::format("client {} (pid {}): unanswerable request dropped: {}",
                                 session.id(), session.pid(), rejection.message));
  }
}

void Poller::loop() {
  auto& sleepers = registry_.header().poller_sleepers;
  auto& seq = registry_.doorbell().seq;
  for (;;) {
    if (drain_once()) continue;
    // acquire: pairs with request_stop(). Checked only after a pass found
    // nothing, so everything already in the rings is dispatched first.
    if (stop_.load(std::memory_order_acquire)) break;
    auto ready = [&] {
      return stop_.load(std::memory_order_acquire) ||
             sessions_.generation() != snapshot_generation_ || any_pending();
    };
    // Spin only while no batch runs: during a batch the requests can only
    // wait for it anyway, and the spinning would take a core from the batch
    // and from the clients (measured: critical p99 4.5 -> 1.6 ms under a
    // saturating load). The clients' doorbell wakes the poller meanwhile.
    const int64_t spin_ns = dispatcher_.busy() ? 0 : spin_ns_;
    ring::wait_until(
        seq, sleepers, ready, [] { return true; },
        ring::WaitPolicy{spin_ns, kSleepForever, kSleepForever});
  }
  snapshot_.clear();
  finished_.store(true, std::memory_order_release);
}

}  // namespace coproc::daemon
