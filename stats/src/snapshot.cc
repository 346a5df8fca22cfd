#include "coproc/stats/snapshot.h"

#include <time.h>

namespace coproc::stats {

namespace {

// A client slot that changes this many times in a row while being read is
// left out of this reading (its client connects and leaves in a loop).
constexpr int kSeqlockRetries = 16;

uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

template <class T>
T get(const std::atomic<T>& a) {
  // relaxed: each field is one atomic, never torn; two fields may be from
  // slightly different moments (segment.h's contract for readers).
  return a.load(std::memory_order_relaxed);
}

template <std::size_t N>
void add(std::array<uint64_t, N>& to, const std::atomic<uint64_t> (&from)[N]) {
  for (std::size_t i = 0; i < N; ++i) to[i] += get(from[i]);
}

template <std::size_t N>
std::string text(const char (&field)[N]) {
  std::size_t n = 0;
  while (n < N && field[n] != '\0') ++n;
  return std::string(field, n);
}

ModelSnapshot read_model(const StatsPage& page, std::size_t m) {
  ModelSnapshot ms;
  ms.name = page.models()[m].name;
  ms.max_batch = page.models()[m].max_batch;
  for (uint32_t k = 0; k < page.blocks_per_model(); ++k) {
    const wire::ModelStats& b = page.block(m, k);
    ms.accepted += get(b.accepted);
    add(ms.completed, b.completed);
    ms.rejected_queue_full += get(b.rejected_queue_full);
    ms.rejected_invalid += get(b.rejected_invalid);
    ms.expired += get(b.expired);
    ms.cancelled += get(b.cancelled);
    ms.dropped_client_gone += get(b.dropped_client_gone);
    ms.batches += get(b.batches);
    ms.batches_on_gpu += get(b.batches_on_gpu);
    ms.batch_rows += get(b.batch_rows);
    add(ms.batch_size_histogram, b.batch_size_histogram);
    add(ms.queue_ns_histogram, b.queue_ns_histogram);
    add(ms.exec_ns_histogram, b.exec_ns_histogram);
    add(ms.e2e_ns_histogram, b.e2e_ns_histogram);
    ms.queue_ns_sum += get(b.queue_ns_sum);
    ms.exec_ns_sum += get(b.exec_ns_sum);
    ms.e2e_ns_sum += get(b.e2e_ns_sum);
    ms.padded_elements_wasted += get(b.padded_elements_wasted);
    ms.padded_elements_total += get(b.padded_elements_total);
  }
  // Gauges, settings and rates live in block 0 only (segment.h ModelStats).
  const wire::ModelStats& first = page.block(m, 0);
  for (uint32_t p = 0; p < wire::kPriorityCount; ++p) ms.queue_depth[p] = get(first.queue_depth[p]);
  ms.gpu_from_batch = get(first.gpu_from_batch);
  ms.device_mode = get(first.device_mode);
  ms.requests_per_s = static_cast<double>(get(first.requests_per_s_milli)) / 1000.0;
  ms.rows_per_s = static_cast<double>(get(first.rows_per_s_milli)) / 1000.0;
  return ms;
}

}  // namespace

// The status table's snake_names, in value order (dense: base/result.h checks it).
const std::array<const char*, wire::kStatusCount> kStatusNames = {
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) #snake_name,
#include "coproc/base/status.def"
};

const std::array<const char*, wire::kPriorityCount> kPriorityNames = {"critical", "high", "normal",
                                                                      "low"};

const std::array<const char*, wire::kDeviceCount> kDeviceNames = {"cpu", "gpu"};

const char* state_name(uint32_t state) {
  switch (static_cast<wire::DaemonState>(state)) {
    case wire::DaemonState::kStarting:
      return "starting";
    case wire::DaemonState::kReady:
      return "ready";
    case wire::DaemonState::kDraining:
      return "draining";
    case wire::DaemonState::kStopped:
      return "stopped";
  }
  return "unknown";
}

const char* device_mode_name(uint64_t mode) {
  switch (static_cast<wire::DeviceMode>(mode)) {
    case wire::DeviceMode::kCpu:
      return "cpu";
    case wire::DeviceMode::kGpu:
      return "gpu";
    case wire::DeviceMode::kAuto:
      return "auto";
  }
  return "unknown";
}

uint64_t ModelSnapshot::completed_total() const {
  uint64_t sum = 0;
  for (uint64_t c : completed) sum += c;
  return sum;
}

double ModelSnapshot::mean_batch() const {
  return batches == 0 ? 0.0 : static_cast<double>(batch_rows) / static_cast<double>(batches);
}

double ModelSnapshot::padding_waste_pct() const {
  if (padded_elements_total == 0) return -1.0;
  return 100.0 * static_cast<double>(padded_elements_wasted) /
         static_cast<double>(padded_elements_total);
}

uint64_t ClientSnapshot::in_flight() const {
  const uint64_t answered = completed_ok + completed_error;
  return requests > answered ? requests - answered : 0;
}

bool read_client(const wire::ClientStats& slot, ClientSnapshot* out) {
  // acquire for every load but the last (segment.h's seqlock, written without fences): the
  // first seq load pairs with the writer's final release, so the fields are at least that
  // write's; a field load that sees a later rewrite pairs with its release store, which comes
  // after that rewrite's odd seq, so the second seq load (relaxed, but after the acquire loads
  // in program order) sees the change.
  constexpr auto acquire = std::memory_order_acquire;
  for (int attempt = 0; attempt < kSeqlockRetries; ++attempt) {
    const uint32_t before = slot.seq.load(acquire);
    if (before % 2 != 0) continue;  // being rewritten
    ClientSnapshot c;
    c.id = slot.client_id.load(acquire);
    c.pid = slot.pid.load(acquire);
    c.uid = slot.uid.load(acquire);
    c.connected_realtime_ns = slot.connected_realtime_ns.load(acquire);
    c.requests = slot.requests.load(acquire);
    c.completed_ok = slot.completed_ok.load(acquire);
    c.completed_error = slot.completed_error.load(acquire);
    if (slot.seq.load(std::memory_order_relaxed) != before) continue;
    if (c.id == 0) return false;
    *out = c;
    return true;
  }
  return false;
}

Snapshot read_snapshot(const StatsPage& page) {
  Snapshot s;
  const auto& h = page.header();
  const wire::DaemonInfo& info = h.daemon;
  DaemonSnapshot& d = s.daemon;
  d.pid = h.daemon_pid;
  // acquire: pairs with the daemon's release in set_state().
  d.state = h.state.load(std::memory_order_acquire);
  s.taken_ns = monotonic_ns();
  const uint64_t beat = get(h.heartbeat_ns);
  d.heartbeat_age_ns = s.taken_ns > beat ? s.taken_ns - beat : 0;
  d.version = text(info.version);
  d.epoch = h.epoch;
  d.uptime_ns = s.taken_ns > info.start_monotonic_ns ? s.taken_ns - info.start_monotonic_ns : 0;
  d.numa_node = h.numa_node;
  d.cpus = text(info.cpus);
  d.cpu_count = info.cpu_count;
  d.threads = get(info.threads);
  d.rss_bytes = get(info.rss_bytes);
  d.http_address = text(info.http_address);
  d.http_port = get(info.http_port);
  d.max_clients = info.max_clients;
  d.clients_connected = get(info.clients_connected);
  d.clients_total = get(info.clients_total);
  d.clients_untracked = get(info.clients_untracked);

  for (std::size_t m = 0; m < page.models().size(); ++m) s.models.push_back(read_model(page, m));
  for (uint32_t i = 0; i < page.client_slots(); ++i) {
    ClientSnapshot c;
    if (read_client(page.client(i), &c)) s.clients.push_back(c);
  }
  for (uint32_t i = 0; i < page.device_count() && i < wire::kDeviceCount; ++i) {
    const wire::DeviceStats& dev = page.device(i);
    DeviceSnapshot ds;
    ds.kind = kDeviceNames[i];
    ds.name = text(dev.name);
    ds.present = dev.present != 0;
    for (const auto& w : dev.by_writer) {
      ds.busy_ns += get(w.busy_ns);
      ds.batches += get(w.batches);
    }
    ds.busy_fraction = static_cast<double>(get(dev.busy_ppm)) / 1e6;
    ds.memory_bytes = get(dev.memory_bytes);
    s.devices.push_back(std::move(ds));
  }
  return s;
}

template <std::size_t N>
double bucket_percentile(const std::array<uint64_t, N>& histogram, double q) {
  uint64_t total = 0;
  for (uint64_t c : histogram) total += c;
  if (total == 0) return 0.0;
  const double rank = q * static_cast<double>(total);
  double below = 0.0;
  for (uint32_t b = 0; b < N; ++b) {
    const double count = static_cast<double>(histogram[b]);
    if (count > 0 && below + count >= rank) {
      const double lo = static_cast<double>(wire::histogram_bucket_lower(b));
      const double hi = static_cast<double>(wire::histogram_bucket_upper(b));
      return lo + (hi - lo) * (rank - below) / count;
    }
    below += count;
  }
  return static_cast<double>(wire::histogram_bucket_upper(N - 1));
}

template double bucket_percentile(const LatencyHistogram&, double);
template double bucket_percentile(const BatchHistogram&, double);

}  // namespace coproc::stats
