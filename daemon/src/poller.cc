#include "poller.h"

#include <spdlog/spdlog.h>

#include "completion.h"
#include "cycle_clock.h"
#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {
// Messages taken from one client per pass, so a flooding client cannot hold
// the poller while others wait.
constexpr int kBurstPerClient = 32;
// The poller sleeps until woken: no timeout, no slice (no periodic wake-ups).
constexpr int64_t kSleepForever = -1;
}  // namespace

Poller::Poller(Registry& registry, SessionTable& sessions, Executor& executor,
               const ModelSet& models, int64_t spin_ns, BrokenClient on_broken)
    : registry_(registry),
      sessions_(sessions),
      executor_(executor),
      models_(models),
      spin_ns_(spin_ns),
      on_broken_(std::move(on_broken)) {}

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
    if (!s->closed() && !s->submissions().empty()) return true;
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
      requests_.fetch_add(1, std::memory_order_relaxed);
      if (now == 0) now = CycleClock::now();
      switch (parse_request({slot_copy_.data(), bytes}, *session, models_, now, &parsed_)) {
        case ParseKind::kWork:
          executor_.dispatch(parsed_.work);
          break;
        case ParseKind::kCancel:
          executor_.cancel(*session, parsed_.cancel.target_id);
          break;
        case ParseKind::kRejected:
          report_rejection(*session, parsed_.rejection);
          break;
      }
    }
  }
  return did_work;
}

void Poller::report_rejection(ClientSession& session, const Rejection& rejection) {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  if (rejection.id_known) {
    spdlog::debug("client {}: request {} rejected: {}", session.id(), rejection.id,
                  rejection.message);
    send_error(session, rejection.id, rejection.code, rejection.message);
  } else {
    spdlog::warn("client {} (pid {}): unanswerable request dropped: {}", session.id(),
                 session.pid(), rejection.message);
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
    ring::wait_until(seq, sleepers, ready, [] { return true; },
                     ring::WaitPolicy{spin_ns_, kSleepForever, kSleepForever});
  }
  snapshot_.clear();
  finished_.store(true, std::memory_order_release);
}

}  // namespace coproc::daemon
