// The daemon-wide shared pages every client maps: the registry (daemon pid,
// epoch, heartbeat, state, model table; read-only for everyone else) and the
// doorbell (one page every client may ring to wake the poller).
#pragma once

#include <cstdint>
#include <span>

#include "coproc/segment.h"
#include "shm.h"

namespace coproc::daemon {

class Registry {
 public:
  // model_count: how many ModelStats slots the stats area holds.
  static Result<Registry> create(std::span<const uint8_t> model_table, uint32_t model_count,
                                 int numa_node);

  wire::RegistryHeader& header() const { return *reinterpret_cast<wire::RegistryHeader*>(registry_.data()); }
  wire::Doorbell& doorbell() const { return *reinterpret_cast<wire::Doorbell*>(doorbell_.data()); }
  int registry_fd() const { return registry_.fd(); }
  int doorbell_fd() const { return doorbell_.fd(); }
  uint64_t registry_bytes() const { return registry_.bytes(); }
  wire::ModelStats& model_stats(uint32_t model_id) const {
    COPROC_CHECK(model_id < header().stats_count);
    return reinterpret_cast<wire::ModelStats*>(registry_.data() + header().stats_offset)[model_id];
  }

  void set_state(wire::DaemonState state);
  void heartbeat();
  // Wakes the poller whether or not it announced sleep (shutdown, new client).
  void ring_doorbell();

 private:
  SharedMemory registry_;
  SharedMemory doorbell_;
};

}  // namespace coproc::daemon
