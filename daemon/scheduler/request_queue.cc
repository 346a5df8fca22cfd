#include "scheduler/request_queue.h"

#include <algorithm>

#include "coproc/base/result.h"

namespace coproc::daemon::sched {
namespace {

constexpr std::size_t index_of(Priority p) { return static_cast<std::size_t>(p); }

// Whole aging steps `r` has waited by now_ns.
uint64_t aging_steps(const QueuedRequest& r, uint64_t now_ns, uint64_t aging_ns) {
  return now_ns > r.arrival_ns ? (now_ns - r.arrival_ns) / aging_ns : 0;
}

// Aging applies only to kNormal and kLow: kHigh is its cap, kCritical is never impersonated.
bool ages(const QueuedRequest& r, uint64_t aging_ns) {
  return aging_ns != 0 && r.priority > Priority::kHigh;
}

}  // namespace

Priority effective_level(const QueuedRequest& r, uint64_t now_ns, uint64_t aging_ns) {
  if (!ages(r, aging_ns)) return r.priority;
  const uint64_t steps = aging_steps(r, now_ns, aging_ns);
  const uint64_t levels_to_cap = index_of(r.priority) - index_of(Priority::kHigh);
  return static_cast<Priority>(index_of(r.priority) - std::min(steps, levels_to_cap));
}

uint64_t next_aging_step_ns(const QueuedRequest& r, uint64_t now_ns, uint64_t aging_ns) {
  if (!ages(r, aging_ns) || effective_level(r, now_ns, aging_ns) == Priority::kHigh) return kNever;
  // Fewer than kPriorityLevels steps are left, so the product stays small
  // unless aging_ns itself is near kNever.
  const uint64_t next_step = aging_steps(r, now_ns, aging_ns) + 1;
  if (aging_ns > kNever / next_step) return kNever;
  return saturating_add(r.arrival_ns, next_step * aging_ns);
}

void RequestQueue::push(QueuedRequest r) {
  COPROC_CHECK(!contains(r.ticket));
  r.seq = next_seq_++;
  seq_by_ticket_.emplace(r.ticket, r.seq);
  if (r.deadline_ns != kNever) deadlines_.emplace(r.deadline_ns, r.seq);
  ++by_priority_[index_of(r.priority)];
  by_seq_.emplace(r.seq, r);
}

void RequestQueue::erase(std::map<uint64_t, QueuedRequest>::iterator it) {
  const QueuedRequest& r = it->second;
  if (r.deadline_ns != kNever) deadlines_.erase({r.deadline_ns, r.seq});
  seq_by_ticket_.erase(r.ticket);
  --by_priority_[index_of(r.priority)];
  by_seq_.erase(it);
}

bool RequestQueue::cancel(uint32_t client, uint64_t ticket) {
  const auto seq = seq_by_ticket_.find(ticket);
  if (seq == seq_by_ticket_.end()) return false;
  const auto it = by_seq_.find(seq->second);
  if (it->second.client != client) return false;
  erase(it);
  return true;
}

void RequestQueue::remove(uint64_t ticket) {
  const auto seq = seq_by_ticket_.find(ticket);
  COPROC_CHECK(seq != seq_by_ticket_.end());
  erase(by_seq_.find(seq->second));
}

void RequestQueue::take_rows(uint64_t ticket, uint32_t rows) {
  const auto seq = seq_by_ticket_.find(ticket);
  COPROC_CHECK(seq != seq_by_ticket_.end());
  QueuedRequest& r = by_seq_.find(seq->second)->second;
  COPROC_CHECK(rows >= 1 && rows < r.rows);
  r.first_row += rows;
  r.rows -= rows;
}

std::size_t RequestQueue::take_expired(uint64_t now_ns, std::vector<uint64_t>* expired) {
  std::size_t count = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ns) {
    const auto it = by_seq_.find(deadlines_.begin()->second);
    expired->push_back(it->second.ticket);
    erase(it);
    ++count;
  }
  return count;
}

std::vector<Ordered> RequestQueue::dispatch_order(uint64_t now_ns, uint64_t aging_ns) const {
  // Per level, per client (ascending id), that client's live requests in
  // admission order: by_seq_ is walked in admission order.
  using ClientLists = std::map<uint32_t, std::vector<const QueuedRequest*>>;
  std::array<ClientLists, kPriorityLevels> by_level;
  for (const auto& [seq, r] : by_seq_) {
    if (r.deadline_ns <= now_ns) continue;
    by_level[index_of(effective_level(r, now_ns, aging_ns))][r.client].push_back(&r);
  }

  std::vector<Ordered> order;
  order.reserve(by_seq_.size());
  for (std::size_t level = 0; level < kPriorityLevels; ++level) {
    const ClientLists& clients = by_level[level];
    // The clients in turn order: from the cursor to the highest id, then wrap.
    std::vector<const std::vector<const QueuedRequest*>*> turn;
    turn.reserve(clients.size());
    const auto start = clients.lower_bound(round_robin_cursor_[level]);
    for (auto it = start; it != clients.end(); ++it) turn.push_back(&it->second);
    for (auto it = clients.begin(); it != start; ++it) turn.push_back(&it->second);
    // One request per client per round; a client drops out when it runs dry.
    for (std::size_t round = 0; !turn.empty(); ++round) {
      std::size_t still_queued = 0;
      for (const auto* requests : turn) {
        order.push_back({(*requests)[round], static_cast<Priority>(level)});
        if (requests->size() > round + 1) turn[still_queued++] = requests;
      }
      turn.resize(still_queued);
    }
  }
  return order;
}

void RequestQueue::advance_round_robin(std::span<const Ordered> order,
                                       std::span<const std::size_t> taken) {
  std::vector<bool> is_taken(order.size(), false);
  std::array<bool, kPriorityLevels> served{};
  std::array<uint32_t, kPriorityLevels> last_served_client{};
  for (const std::size_t i : taken) {
    is_taken[i] = true;
    served[index_of(order[i].level)] = true;
    last_served_client[index_of(order[i].level)] = order[i].request->client;
  }
  std::array<bool, kPriorityLevels> moved{};
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::size_t level = index_of(order[i].level);
    if (served[level] && !moved[level] && !is_taken[i]) {
      round_robin_cursor_[level] = order[i].request->client;
      moved[level] = true;
    }
  }
  for (std::size_t level = 0; level < kPriorityLevels; ++level) {
    // Past the last client served; wraps to 0 after the highest id, which
    // lower_bound() in dispatch_order() treats the same as a wrap.
    if (served[level] && !moved[level]) round_robin_cursor_[level] = last_served_client[level] + 1;
  }
}

uint64_t RequestQueue::earliest_deadline_ns() const {
  return deadlines_.empty() ? kNever : deadlines_.begin()->first;
}

uint64_t RequestQueue::next_aging_step_ns(uint64_t now_ns, uint64_t aging_ns) const {
  uint64_t earliest = kNever;
  for (const auto& [seq, r] : by_seq_) {
    earliest = std::min(earliest, sched::next_aging_step_ns(r, now_ns, aging_ns));
  }
  return earliest;
}

void RequestQueue::rebucket(const std::function<int64_t(int64_t length)>& padded_length_of) {
  for (auto& [seq, r] : by_seq_) r.padded_length = padded_length_of(r.length);
}

}  // namespace coproc::daemon::sched
