#include "registry.h"

#include <time.h>
#include <unistd.h>

#include <cstring>

#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {
uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }
}  // namespace

Result<Registry> Registry::create(std::span<const uint8_t> model_table, uint32_t model_count,
                                  int numa_node) {
  using namespace wire;
  Registry r;
  std::size_t stats_offset = kPageBytes + round_up(model_table.size(), kPageBytes);
  std::size_t bytes = stats_offset + round_up(model_count * sizeof(ModelStats), kPageBytes);
  auto registry = SharedMemory::create("coproc-registry", bytes, numa_node);
  if (!registry.ok()) return registry.error();
  auto doorbell = SharedMemory::create("coproc-doorbell", kPageBytes, numa_node);
  if (!doorbell.ok()) return doorbell.error();
  r.registry_ = std::move(registry.value());
  r.doorbell_ = std::move(doorbell.value());

  auto* h = new (r.registry_.data()) RegistryHeader{};
  h->magic = kRegistryMagic;
  h->protocol_version = kProtocolVersion;
  h->daemon_pid = ::getpid();
  h->epoch = realtime_ns();
  h->registry_bytes = bytes;
  h->numa_node = numa_node;
  h->model_table_offset = kPageBytes;
  std::memcpy(r.registry_.data() + kPageBytes, model_table.data(), model_table.size());
  h->stats_offset = stats_offset;
  h->stats_count = model_count;
  h->stats_stride = sizeof(ModelStats);
  for (uint32_t i = 0; i < model_count; ++i) {
    new (r.registry_.data() + stats_offset + i * sizeof(ModelStats)) ModelStats{};
  }
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

void Registry::set_state(wire::DaemonState state) {
  // release: a reader that sees kReady also sees everything published before.
  header().state.store(static_cast<uint32_t>(state), std::memory_order_release);
}

void Registry::heartbeat() {
  // relaxed: a standalone liveness timestamp; nothing is published with it.
  header().heartbeat_ns.store(static_cast<uint64_t>(ring::monotonic_ns()), std::memory_order_relaxed);
}

void Registry::ring_doorbell() {
  // release RMW: orders the caller's earlier stores (e.g. the stop flag) before
  // the poller's re-check after it wakes.
  doorbell().seq.fetch_add(1, std::memory_order_release);
  ring::futex_wake_all(&doorbell().seq);
}

}  // namespace coproc::daemon
