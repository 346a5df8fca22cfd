// The daemon-wide shared pages every client maps: the registry (daemon pid,
// epoch, heartbeat, state, model table and the stats page; read-only for
// everyone else) and the doorbell (one page every client may ring to wake the
// poller). segment.h documents the layout and the readers' contract.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "coproc/segment.h"
#include "ingest/shm.h"

namespace coproc::daemon {

// What the registry says about the daemon and its devices, fixed at start.
struct RegistryInfo {
  std::string version;
  std::string cpus;  // "0-3,8"
  uint32_t cpu_count = 0;
  uint32_t max_clients = 0;
  uint32_t client_slots = 0;  // slots in the stats page; clients beyond them are not shown
  std::string http_address;   // "" when the HTTP endpoint is off
  std::string device_names[wire::kDeviceCount];  // "" for a device not in use
};

class Registry {
 public:
  // stats_blocks: how many ModelStats blocks the stats area holds (models x writers).
  static Result<Registry> create(std::span<const uint8_t> model_table, uint32_t stats_blocks,
                                 int numa_node, const RegistryInfo& info);

  wire::RegistryHeader& header() const {
    return *reinterpret_cast<wire::RegistryHeader*>(registry_.data());
  }
  wire::DaemonInfo& daemon_info() const { return header().daemon; }
  wire::Doorbell& doorbell() const { return *reinterpret_cast<wire::Doorbell*>(doorbell_.data()); }
  int registry_fd() const { return registry_.fd(); }
  int doorbell_fd() const { return doorbell_.fd(); }
  uint64_t registry_bytes() const { return registry_.bytes(); }
  // The daemon's own (writable) mapping, for readers inside the daemon (/metrics).
  const std::byte* data() const { return registry_.data(); }
  wire::ModelStats& model_stats(uint32_t block) const {
    COPROC_CHECK(block < header().stats_count);
    return reinterpret_cast<wire::ModelStats*>(registry_.data() + header().stats_offset)[block];
  }
  wire::DeviceStats& device_stats(uint32_t device) const {
    COPROC_CHECK(device < wire::kDeviceCount);
    return reinterpret_cast<wire::DeviceStats*>(registry_.data() +
                                                header().device_stats_offset)[device];
  }

  // Control loop only: takes a free client slot and publishes the client's identity in it with
  // zeroed counters (seqlock write). -1 when every slot is taken (the client is then counted in
  // clients_untracked and not shown).
  int acquire_client_slot(uint32_t client_id, int32_t pid, uint32_t uid);
  // Control loop only: the client disconnected; readers stop showing it. Its counters may still be
  // bumped by work in flight until release_client_slot.
  void clear_client_slot(int slot);
  // Any thread, once nothing can count into the slot any more (the session is destroyed): the
  // control loop may hand it to a later client.
  void release_client_slot(int slot);
  wire::ClientStats& client_stats(int slot) const {
    COPROC_CHECK(slot >= 0 && static_cast<uint32_t>(slot) < header().client_slots);
    return reinterpret_cast<wire::ClientStats*>(registry_.data() +
                                                header().client_stats_offset)[slot];
  }

  void set_state(wire::DaemonState state);
  void heartbeat();
  // Wakes the poller whether or not it announced sleep (shutdown, new client).
  void ring_doorbell();

 private:
  SharedMemory registry_;
  SharedMemory doorbell_;
  // Daemon-private: slot i may be handed out only while held_[i] is false. Set by the control
  // loop; cleared with release by the session's destructor on whichever thread drops it last, and
  // read with acquire by the control loop, so every count into the slot happens before its reset.
  std::unique_ptr<std::atomic<bool>[]> held_;
};

}  // namespace coproc::daemon
