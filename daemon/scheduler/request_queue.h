// The queued requests of one model and the order they are dispatched in.
//
// Order (computed on demand by dispatch_order(), never stored):
//   1. By effective level, most urgent first. A request's effective level is
//      its priority, made one level more urgent per aging_ns waited and capped
//      at kHigh; kCritical is never reached by aging (effective_level()).
//   2. Within a level, clients take turns: one request per client per turn,
//      starting at that level's round-robin cursor, clients in ascending id
//      order from there, wrapping. A client's requests at one level go in
//      admission order (FIFO).
//   Requests whose deadline is <= now are left out of the order: they wait in
//   the queue for take_expired().
//
// Round-robin cursor, one per level: the client id at which the next turn
// starts (the first client with id >= cursor, wrapping). After a batch,
// advance_round_robin() moves it to the client of the first request of that
// level the batch passed over (left for a later batch, or skipped because it
// is in another length bucket), else to just past the last client served; so
// a client passed over is first in line next time and a flood from one client
// costs every other client at most one of its turns.
//
// Costs, n = queued requests: push, cancel, remove O(log n); dispatch_order
// O(n log c) (c = clients); take_expired O(k log n) for k expired.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "scheduler/scheduler_types.h"

namespace coproc::daemon::sched {

struct QueuedRequest {
  uint64_t ticket = 0;
  uint32_t client = 0;
  Priority priority = Priority::kNormal;
  uint32_t rows = 1;       // rows still queued
  uint32_t first_row = 0;  // rows already dispatched in chunks (Policy::chunk_requests)
  int64_t length = 0;
  int64_t padded_length = 0;      // its bucket (padded_length_for)
  uint64_t deadline_ns = kNever;  // effective: own, else arrival + default timeout, else kNever
  uint64_t arrival_ns = 0;
  uint64_t seq = 0;  // admission order, assigned by push()
};

// One request in dispatch order, with the level it is served at.
struct Ordered {
  const QueuedRequest* request = nullptr;
  Priority level = Priority::kNormal;
};

// The level `r` is served at, `now_ns`: see the order above. aging_ns 0 = no aging.
Priority effective_level(const QueuedRequest& r, uint64_t now_ns, uint64_t aging_ns);

// When effective_level(r, ., aging_ns) next changes after now_ns; kNever when it
// no longer will (critical, high, already aged to kHigh, aging off).
uint64_t next_aging_step_ns(const QueuedRequest& r, uint64_t now_ns, uint64_t aging_ns);

class RequestQueue {
 public:
  bool contains(uint64_t ticket) const { return seq_by_ticket_.contains(ticket); }
  // r.ticket must not be queued.
  void push(QueuedRequest r);
  // Removes the request when it is queued and belongs to `client`.
  bool cancel(uint32_t client, uint64_t ticket);
  // Removes a queued request.
  void remove(uint64_t ticket);
  // A chunk of a queued request was dispatched: its first `rows` rows (fewer
  // than it has queued) leave; the request keeps its place, priority and deadline.
  void take_rows(uint64_t ticket, uint32_t rows);
  // Removes every request with deadline_ns <= now_ns, appending their tickets
  // in deadline order; returns how many.
  std::size_t take_expired(uint64_t now_ns, std::vector<uint64_t>* expired);

  // The requests with deadline_ns > now_ns in dispatch order. The pointers
  // stay valid until the queue is next modified.
  std::vector<Ordered> dispatch_order(uint64_t now_ns, uint64_t aging_ns) const;
  // After a batch took order[i] for every i in `taken` (ascending), and before
  // those are removed: moves the cursors of the levels it served.
  void advance_round_robin(std::span<const Ordered> order, std::span<const std::size_t> taken);

  // The earliest effective deadline queued; kNever when none.
  uint64_t earliest_deadline_ns() const;
  // The earliest next_aging_step_ns over the queue. O(n).
  uint64_t next_aging_step_ns(uint64_t now_ns, uint64_t aging_ns) const;
  // Re-computes every queued request's padded_length (after a policy change).
  void rebucket(const std::function<int64_t(int64_t length)>& padded_length_of);

  std::size_t size() const { return by_seq_.size(); }
  const std::array<std::size_t, kPriorityLevels>& size_by_priority() const { return by_priority_; }

 private:
  void erase(std::map<uint64_t, QueuedRequest>::iterator it);

  std::map<uint64_t, QueuedRequest> by_seq_;  // admission order
  std::unordered_map<uint64_t, uint64_t> seq_by_ticket_;
  std::set<std::pair<uint64_t, uint64_t>> deadlines_;  // (deadline_ns, seq), kNever left out
  std::array<std::size_t, kPriorityLevels> by_priority_{};
  std::array<uint32_t, kPriorityLevels> round_robin_cursor_{};
  uint64_t next_seq_ = 0;
};

}  // namespace coproc::daemon::sched
