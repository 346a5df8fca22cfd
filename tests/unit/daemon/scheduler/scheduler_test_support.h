// Helpers shared by the scheduler tests: time units, request builders and a
// deterministic discrete-event driver that plays the daemon's executor loop
// (admit arrivals, expire, next_batch when the device is free, sleep until the
// next event) against a synthetic arrival trace and a synthetic execution cost.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "scheduler/model_scheduler.h"

namespace coproc::daemon::sched::test_support {

inline constexpr uint64_t kUs = 1'000;
inline constexpr uint64_t kMs = 1'000'000;

// One request of `rows` rows from `client` at `arrival_ns`.
inline Request make_request(uint64_t ticket, uint32_t client, Priority priority,
                            uint64_t arrival_ns, uint32_t rows = 1) {
  return Request{.ticket = ticket,
                 .client = client,
                 .priority = priority,
                 .rows = rows,
                 .arrival_ns = arrival_ns};
}

// Dynamic mode, batches of one request per row, no aging unless asked.
inline Policy dynamic_policy(uint32_t max_batch) {
  Policy policy;
  policy.mode = Mode::kDynamic;
  policy.max_batch = max_batch;
  policy.aging_ns = 0;
  return policy;
}

// Calls next_batch at now_ns until it returns nullopt; the batches in order.
inline std::vector<Batch> drain_ready(ModelScheduler& scheduler, uint64_t now_ns) {
  std::vector<Batch> batches;
  while (auto batch = scheduler.next_batch(now_ns)) batches.push_back(std::move(*batch));
  return batches;
}

struct SimulatedRequest {
  uint64_t arrival_ns = 0;
  uint32_t client = 0;
  Priority priority = Priority::kNormal;
  uint32_t rows = 1;
};

struct SimulationResult {
  std::unordered_map<uint64_t, uint64_t> dispatch_ns_by_ticket;  // ticket = index in the trace
  std::unordered_map<uint64_t, uint64_t> complete_ns_by_ticket;
  std::vector<uint32_t> batch_rows;
  uint64_t expired = 0;
};

// Plays `trace` (sorted by arrival) through `scheduler` on one device whose
// batches of b rows take exec_ns_of(b). With `feedback`, every batch's time is
// given to record_execution(). Ends when every request has left the queue and
// the device is idle. A request that runs in chunks is recorded at its last chunk.
inline SimulationResult simulate(ModelScheduler& scheduler,
                                 const std::vector<SimulatedRequest>& trace,
                                 const std::function<uint64_t(uint32_t rows)>& exec_ns_of,
                                 bool feedback = true) {
  SimulationResult result;
  uint64_t now_ns = 0;
  std::size_t next_arrival = 0;
  std::optional<Batch> running;
  uint64_t running_done_ns = 0;
  std::vector<uint64_t> expired;
  while (next_arrival < trace.size() || scheduler.queued() > 0 || running) {
    uint64_t wake_ns = scheduler.next_event_ns(now_ns);
    if (next_arrival < trace.size()) wake_ns = std::min(wake_ns, trace[next_arrival].arrival_ns);
    if (running) wake_ns = std::min(wake_ns, running_done_ns);
    if (wake_ns == kNever) {
      ADD_FAILURE() << "requests queued on an idle device with no event to wait for";
      break;
    }
    now_ns = std::max(now_ns, wake_ns);

    if (running && running_done_ns <= now_ns) {
      for (const uint64_t ticket : running->tickets)
        result.complete_ns_by_ticket[ticket] = running_done_ns;
      if (feedback)
        scheduler.record_execution(running->rows, running->padded_length,
                                   exec_ns_of(running->rows));
      running.reset();
    }
    for (; next_arrival < trace.size() && trace[next_arrival].arrival_ns <= now_ns;
         ++next_arrival) {
      const SimulatedRequest& r = trace[next_arrival];
      scheduler.admit(make_request(next_arrival, r.client, r.priority, r.arrival_ns, r.rows),
                      now_ns);
    }
    expired.clear();
    scheduler.expire(now_ns, &expired);
    result.expired += expired.size();
    if (!running) {
      running = scheduler.next_batch(now_ns);
      if (running) {
        running_done_ns = now_ns + exec_ns_of(running->rows);
        result.batch_rows.push_back(running->rows);
        for (const uint64_t ticket : running->tickets)
          result.dispatch_ns_by_ticket[ticket] = now_ns;
      }
    }
  }
  return result;
}

// Requests from one client, one every interval_ns from start_ns.
inline std::vector<SimulatedRequest> periodic_trace(std::size_t count, uint64_t interval_ns,
                                                    uint64_t start_ns = 0) {
  std::vector<SimulatedRequest> trace(count);
  for (std::size_t i = 0; i < count; ++i) trace[i].arrival_ns = start_ns + i * interval_ns;
  return trace;
}

}  // namespace coproc::daemon::sched::test_support
