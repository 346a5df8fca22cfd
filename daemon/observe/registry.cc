#include "observe/registry.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {
uint64_t clock_ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

template <std::size_t N>
void copy_text(char (&to)[N], const std::string& from) {
  const std::size_t n = std::min(from.size(), N - 1);
  std::memcpy(to, from.data(), n);
  to[n] = '\0';
}

template <class T>
T* construct_array(std::byte* at, uint32_t count) {
  auto* first = reinterpret_cast<T*>(at);
  for (uint32_t i = 0; i < count; ++i) new (first + i) T{};
  return first;
}
}  // namespace

Result<Registry> Registry::create(std::span<const uint8_t> model_table, uint32_t stats_blocks,
                                  int numa_node, const RegistryInfo& info) {
  using namespace wire;
  Registry r;
  const std::size_t stats_offset = kPageBytes + round_up(model_table.size(), kPageBytes);
  const std::size_t clients_offset =
      stats_offset + round_up(std::size_t{stats_blocks} * sizeof(ModelStats), kPageBytes);
  const std::size_t devices_offset =
      clients_offset + round_up(std::size_t{info.client_slots} * sizeof(ClientStats), kPageBytes);
  const std::size_t bytes =
      devices_offset + round_up(kDeviceCount * sizeof(DeviceStats), kPageBytes);
  auto registry = SharedMemory::create("coproc-registry", bytes, numa_node);
  if (!registry.ok()) return registry.error();
  auto doorbell = SharedMemory::create("coproc-doorbell", kPageBytes, numa_node);
  if (!doorbell.ok()) return doorbell.error();
  r.registry_ = std::move(registry.value());
  r.doorbell_ = std::move(doorbell.value());
  std::byte* base = r.registry_.data();

  auto* h = new (base) RegistryHeader{};
  h->magic = kRegistryMagic;
  h->protocol_version = kProtocolVersion;
  h->daemon_pid = ::getpid();
  h->epoch = clock_ns(CLOCK_REALTIME);
  h->registry_bytes = bytes;
  h->numa_node = numa_node;
  h->model_table_offset = kPageBytes;
  std::memcpy(base + kPageBytes, model_table.data(), model_table.size());
  h->stats_offset = stats_offset;
  h->stats_count = stats_blocks;
  h->stats_stride = sizeof(ModelStats);
  construct_array<ModelStats>(base + stats_offset, stats_blocks);
  h->client_stats_offset = clients_offset;
  h->client_slots = info.client_slots;
  h->client_stats_stride = sizeof(ClientStats);
  construct_array<ClientStats>(base + clients_offset, info.client_slots);
  r.held_ = std::make_unique<std::atomic<bool>[]>(info.client_slots);
  h->device_stats_offset = devices_offset;
  h->device_count = kDeviceCount;
  h->device_stats_stride = sizeof(DeviceStats);
  DeviceStats* devices = construct_array<DeviceStats>(base + devices_offset, kDeviceCount);
  for (uint32_t d = 0; d < kDeviceCount; ++d) {
    copy_text(devices[d].name, info.device_names[d]);
    devices[d].present = info.device_names[d].empty() ? 0 : 1;
  }

  DaemonInfo& daemon = h->daemon;
  copy_text(daemon.version, info.version);
  copy_text(daemon.cpus, info.cpus);
  copy_text(daemon.http_address, info.http_address);
  daemon.start_monotonic_ns = clock_ns(CLOCK_MONOTONIC);
  daemon.cpu_count = info.cpu_count;
  daemon.max_clients = info.max_clients;

  // relaxed: ordered before readers by the release store of layout_version.
  h->model_table_generation.store(1, std::memory_order_relaxed);
  h->model_table_bytes.store(model_table.size(), std::memory_order_relaxed);
  h->heartbeat_ns.store(static_cast<uint64_t>(ring::monotonic_ns()), std::memory_order_relaxed);
  h->state.store(static_cast<uint32_t>(DaemonState::kStarting), std::memory_order_relaxed);
  new (r.doorbell_.data()) Doorbell{};
  // release: publishes every field above to a reader's acquire load of
  // layout_version (client connect, coproc-stat).
  h->layout_version.store(kRegistryLayoutVersion, std::memory_order_release);

  if (auto s = r.registry_.seal(/*read_only_for_others=*/true); !s.ok()) return s.error();
  if (auto s = r.doorbell_.seal(/*read_only_for_others=*/false); !s.ok()) return s.error();
  return r;
}

int Registry::acquire_client_slot(uint32_t client_id, int32_t pid, uint32_t uid) {
  const uint32_t slots = header().client_slots;
  for (uint32_t i = 0; i < slots; ++i) {
    // acquire: pairs with release_client_slot, so the last counts of the slot's previous client
    // happen before the reset below.
    if (held_[i].load(std::memory_order_acquire)) continue;
    held_[i].store(true, std::memory_order_relaxed);  // only this thread sets it
    wire::ClientStats& c = client_stats(static_cast<int>(i));
    // Seqlock write, without fences (ThreadSanitizer does not model them): seq odd, then every
    // field with a release store, then seq even with a release store. A reader that loads any
    // of these fields (acquire) therefore also sees the odd seq when it loads seq again, and
    // retries; one that saw the even seq (acquire) sees every field written before it.
    const uint32_t seq = c.seq.load(std::memory_order_relaxed);
    c.seq.store(seq + 1, std::memory_order_relaxed);
    c.client_id.store(client_id, std::memory_order_release);
    c.pid.store(pid, std::memory_order_release);
    c.uid.store(uid, std::memory_order_release);
    c.connected_realtime_ns.store(clock_ns(CLOCK_REALTIME), std::memory_order_release);
    c.requests.store(0, std::memory_order_release);
    c.completed_ok.store(0, std::memory_order_release);
    c.completed_error.store(0, std::memory_order_release);
    c.seq.store(seq + 2, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void Registry::clear_client_slot(int slot) {
  wire::ClientStats& c = client_stats(slot);
  // The same seqlock write as acquire_client_slot, of the id alone.
  const uint32_t seq = c.seq.load(std::memory_order_relaxed);
  c.seq.store(seq + 1, std::memory_order_relaxed);
  c.client_id.store(0, std::memory_order_release);
  c.seq.store(seq + 2, std::memory_order_release);
}

void Registry::release_client_slot(int slot) {
  COPROC_CHECK(slot >= 0 && static_cast<uint32_t>(slot) < header().client_slots);
  held_[slot].store(false, std::memory_order_release);
}

void Registry::set_state(wire::DaemonState state) {
  // release: a reader that sees kReady also sees everything published before.
  header().state.store(static_cast<uint32_t>(state), std::memory_order_release);
}

void Registry::heartbeat() {
  // relaxed: a standalone liveness timestamp; nothing is published with it.
  header().heartbeat_ns.store(static_cast<uint64_t>(ring::monotonic_ns()),
                              std::memory_order_relaxed);
}

void Registry::ring_doorbell() {
  // release RMW: orders the caller's earlier stores (e.g. the stop flag) before
  // the poller's re-check after it wakes.
  doorbell().seq.fetch_add(1, std::memory_order_release);
  ring::futex_wake_all(&doorbell().seq);
}

}  // namespace coproc::daemon
