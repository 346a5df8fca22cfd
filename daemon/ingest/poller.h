// The poller thread: drains every client's submission ring, checks each
// request against its model (parse_request works on a private copy of the
// slot; what leaves it is fully checked), and hands each
// drain pass's requests to the dispatcher at once, so requests that arrive
// together can be batched together. When all rings stay empty for spin_ns it
// sleeps on the registry doorbell (ring/wait.h protocol): an idle daemon uses
// no CPU. It also reports a client whose completion ring overflowed (see
// ClientSession::push_completion) as broken, so the control loop disconnects
// it; whoever dropped the completion rings the doorbell to wake it for that.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/dispatcher.h"
#include "ingest/session_table.h"
#include "observe/registry.h"
#include "observe/run_stats.h"
#include "platform/log_limiter.h"

namespace coproc::daemon {

class Poller {
 public:
  using BrokenClient = std::function<void(uint32_t client_id, std::string reason)>;

  Poller(Registry& registry, SessionTable& sessions, Dispatcher& dispatcher, const ModelSet& models,
         int64_t spin_ns, BrokenClient on_broken);
  ~Poller();

  void start();
  // Drain: every request already in a ring is still read and dispatched, then
  // the thread exits. finished() turns true after that.
  void request_stop();
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  void join();
  // Any thread (the control loop's heartbeat): logs the counts of warnings held back, once their
  // second is over, even while the poller sleeps. now_ms: CLOCK_MONOTONIC in milliseconds.
  void flush_logs(uint64_t now_ms) { garbage_log_.flush(now_ms); }

 private:
  void loop();
  bool drain_once();
  bool any_pending();
  void report_rejection(ClientSession& session, const Rejection& rejection);

  Registry& registry_;
  SessionTable& sessions_;
  Dispatcher& dispatcher_;
  const ModelSet& models_;
  RunStats stats_;  // the poller's writer: requests refused for their shapes
  const int64_t spin_ns_;
  BrokenClient on_broken_;

  std::vector<std::shared_ptr<ClientSession>> snapshot_;  // poller thread only
  uint64_t snapshot_generation_ = ~uint64_t{0};
  std::vector<std::byte> slot_copy_;
  // Any client can push garbage as fast as it likes: its warnings are rate-limited, timed with
  // CLOCK_MONOTONIC in milliseconds (flushed by the control loop too).
  LogLimiter garbage_log_{10, "unanswerable requests"};
  Parsed parsed_;  // reused for every message
  // The current drain pass's requests, handed to the dispatcher together.
  std::vector<WorkItem> pass_;
  std::size_t pass_size_ = 0;
  void flush_pass();

  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace coproc::daemon
