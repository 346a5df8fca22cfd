// The set of connected clients, shared by the control loop (adds, removes)
// and the poller (reads). The poller keeps a private snapshot and refreshes
// it only when the generation moved, so its hot loop takes no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "ingest/client_session.h"

namespace coproc::daemon {

class SessionTable {
 public:
  void add(std::shared_ptr<ClientSession> session) {
    std::lock_guard lock(mu_);
    sessions_.push_back(std::move(session));
    // release: pairs with generation()'s acquire in the poller, which then
    // takes the lock to copy the new list.
    generation_.fetch_add(1, std::memory_order_release);
  }

  void remove(uint32_t id) {
    std::lock_guard lock(mu_);
    std::erase_if(sessions_, [id](const auto& s) { return s->id() == id; });
    generation_.fetch_add(1, std::memory_order_release);
  }

  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Copies the list; returns the generation it belongs to.
  uint64_t snapshot(std::vector<std::shared_ptr<ClientSession>>* out) const {
    std::lock_guard lock(mu_);
    *out = sessions_;
    return generation_.load(std::memory_order_relaxed);
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return sessions_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<ClientSession>> sessions_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace coproc::daemon
