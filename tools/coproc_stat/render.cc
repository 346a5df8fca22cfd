#include "render.h"

#include <fmt/format.h>
#include <time.h>

#include <ctime>
#include <iterator>

#include "coproc/base/json_text.h"
#include "suggest.h"

namespace coproc::stat {

namespace {

using stats::ClientSnapshot;
using stats::DeviceSnapshot;
using stats::LatencyHistogram;
using stats::ModelSnapshot;
using stats::Snapshot;

constexpr double kNsPerSecond = 1e9;
constexpr double kQuantiles[] = {0.50, 0.90, 0.99};

template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

// 1.23 ms, 456 us, 789 ns: three significant digits at the right scale.
std::string duration(double ns) {
  if (ns >= 1e9) return fmt::format("{:.2f} s", ns / 1e9);
  if (ns >= 1e6) return fmt::format("{:.2f} ms", ns / 1e6);
  if (ns >= 1e3) return fmt::format("{:.1f} us", ns / 1e3);
  return fmt::format("{:.0f} ns", ns);
}

std::string bytes_text(uint64_t b) {
  if (b >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1 << 30));
  if (b >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20));
  if (b >= (uint64_t{1} << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(b) / (1 << 10));
  return fmt::format("{} B", b);
}

// "3d 04:05:06" or "04:05:06".
std::string uptime_text(uint64_t ns) {
  uint64_t s = ns / 1'000'000'000u;
  const uint64_t days = s / 86400;
  s %= 86400;
  const std::string hms = fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return days > 0 ? fmt::format("{}d {}", days, hms) : hms;
}

// Local wall-clock time of a CLOCK_REALTIME stamp, "2026-11-23 14:05:06".
std::string wall_time(uint64_t realtime_ns) {
  const time_t t = static_cast<time_t>(realtime_ns / 1'000'000'000u);
  tm local{};
  ::localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &local);
  return buf;
}

void latency_row(std::string& out, const char* what, const LatencyHistogram& h) {
  put(out, "    {:<28}", what);
  for (double q : kQuantiles) put(out, " {:>10}", duration(stats::bucket_percentile(h, q)));
  put(out, "\n");
}

void daemon_section(std::string& out, const Snapshot& s) {
  const stats::DaemonSnapshot& d = s.daemon;
  put(out, "coprocd {}  pid {}  {}  up {}  heartbeat {:.1f} s ago{}\n", d.version, d.pid,
      stats::state_name(d.state), uptime_text(d.uptime_ns),
      static_cast<double>(d.heartbeat_age_ns) / kNsPerSecond,
      d.heartbeat_age_ns >= stats::kStaleHeartbeatNs ? " (STALE)" : "");
  put(out, "  started {} (epoch {})  numa node {}  cpus {} ({})  threads {}  rss {}\n",
      wall_time(d.epoch), d.epoch, d.numa_node, d.cpus, d.cpu_count, d.threads,
      bytes_text(d.rss_bytes));
  put(out, "  clients {} of {} (accepted {} since start)  http {}\n", d.clients_connected,
      d.max_clients, d.clients_total,
      d.http_port == 0 ? std::string("off") : fmt::format("{}:{}", d.http_address, d.http_port));
}

void device_section(std::string& out, const Snapshot& s) {
  put(out, "\ndevices\n");
  for (const DeviceSnapshot& d : s.devices) {
    if (!d.present) {
      put(out, "  {:<4} not in use\n", d.kind);
      continue;
    }
    put(out, "  {:<4} busy {:5.1f}%  batches {}  run time {}  memory {}  {}\n", d.kind,
        100.0 * d.busy_fraction, d.batches, duration(static_cast<double>(d.busy_ns)),
        bytes_text(d.memory_bytes), d.name);
  }
}

void model_section(std::string& out, const ModelSnapshot& m, const ModelSnapshot* before,
                   double seconds) {
  put(out, "\nmodel {}  device {}", m.name, stats::device_mode_name(m.device_mode));
  if (m.gpu_from_batch != 0) put(out, " (gpu from batch {})", m.gpu_from_batch);
  put(out, "\n  requests   accepted {}  completed {}", m.accepted, m.completed_total());
  if (before != nullptr && seconds > 0) {
    const double done = static_cast<double>(m.completed[0] - before->completed[0]);
    put(out, "  rate {:.1f} req/s (this view)", done / seconds);
  } else {
    put(out, "  rate {:.1f} req/s, {:.1f} rows/s", m.requests_per_s, m.rows_per_s);
  }
  put(out, "\n  by status ");
  for (uint32_t st = 0; st < wire::kStatusCount; ++st) {
    if (m.completed[st] != 0 || st == 0) put(out, " {} {}", stats::kStatusNames[st], m.completed[st]);
  }
  put(out, "\n  failures   rejected {} (queue full {}, invalid {})  expired {}  cancelled {}  dropped {}\n",
      m.rejected(), m.rejected_queue_full, m.rejected_invalid, m.expired, m.cancelled,
      m.dropped_client_gone);
  put(out, "  queue      depth");
  for (uint32_t p = 0; p < wire::kPriorityCount; ++p) {
    put(out, " {} {}", stats::kPriorityNames[p], m.queue_depth[p]);
  }
  put(out, "\n  batches    {}  mean size {:.2f}", m.batches, m.mean_batch());
  if (m.max_batch != 0) put(out, " of max {}", m.max_batch);
  put(out, "  on cpu {}  on gpu {}\n", m.batches - std::min(m.batches, m.batches_on_gpu),
      m.batches_on_gpu);
  put(out, "  latency (bucket estimates)        p50        p90        p99\n");
  latency_row(out, "end to end, per request", m.e2e_ns_histogram);
  latency_row(out, "queue, per request", m.queue_ns_histogram);
  latency_row(out, "execution, per batch", m.exec_ns_histogram);
  if (m.padding_waste_pct() < 0) {
    put(out, "  padding    none\n");
  } else {
    put(out, "  padding    {:.1f}% wasted ({} of {} elements)\n", m.padding_waste_pct(),
        m.padded_elements_wasted, m.padded_elements_total);
  }
}

void client_section(std::string& out, const Snapshot& s) {
  put(out, "\nclients\n");
  if (s.clients.empty()) {
    put(out, "  none connected\n");
    return;
  }
  put(out, "  {:>6} {:>8} {:>6} {:>10} {:>10} {:>8} {:>9}  {}\n", "id", "pid", "uid", "requests",
      "completed", "errors", "in flight", "connected since");
  for (const ClientSnapshot& c : s.clients) {
    put(out, "  {:>6} {:>8} {:>6} {:>10} {:>10} {:>8} {:>9}  {}\n", c.id, c.pid, c.uid, c.requests,
        c.completed_ok, c.completed_error, c.in_flight(), wall_time(c.connected_realtime_ns));
  }
  if (s.daemon.clients_untracked != 0) {
    put(out, "  ({} clients connected while every stats slot was taken are not listed)\n",
        s.daemon.clients_untracked);
  }
}

template <std::size_t N>
std::string json_array(const std::array<uint64_t, N>& a) {
  return fmt::format("[{}]", fmt::join(a, ","));
}

std::string json_estimates(const LatencyHistogram& h) {
  return fmt::format("{{\"p50\":{},\"p90\":{},\"p99\":{}}}", stats::bucket_percentile(h, 0.50),
                     stats::bucket_percentile(h, 0.90), stats::bucket_percentile(h, 0.99));
}

void json_model(std::string& out, const ModelSnapshot& m) {
  put(out, "{{\"name\":{},\"device\":\"{}\",\"max_batch\":{},\"accepted\":{},\"completed\":{{",
      json_string(m.name), stats::device_mode_name(m.device_mode), m.max_batch, m.accepted);
  for (uint32_t st = 0; st < wire::kStatusCount; ++st) {
    put(out, "{}\"{}\":{}", st ? "," : "", stats::kStatusNames[st], m.completed[st]);
  }
  put(out,
      "}},\"completed_total\":{},\"rejected_queue_full\":{},\"rejected_invalid\":{},"
      "\"expired\":{},\"cancelled\":{},\"dropped_client_gone\":{},\"queue_depth\":{},"
      "\"batches\":{},\"batches_on_gpu\":{},\"gpu_from_batch\":{},\"batch_rows\":{},"
      "\"mean_batch\":{},\"requests_per_s\":{},\"rows_per_s\":{},\"batch_size_histogram\":{},"
      "\"queue_ns_histogram\":{},\"exec_ns_histogram\":{},\"e2e_ns_histogram\":{},"
      "\"queue_ns_sum\":{},\"exec_ns_sum\":{},\"e2e_ns_sum\":{},"
      "\"padded_elements_wasted\":{},\"padded_elements_total\":{}",
      m.completed_total(), m.rejected_queue_full, m.rejected_invalid, m.expired, m.cancelled,
      m.dropped_client_gone, json_array(m.queue_depth), m.batches, m.batches_on_gpu,
      m.gpu_from_batch, m.batch_rows, m.mean_batch(), m.requests_per_s, m.rows_per_s,
      json_array(m.batch_size_histogram), json_array(m.queue_ns_histogram),
      json_array(m.exec_ns_histogram), json_array(m.e2e_ns_histogram), m.queue_ns_sum,
      m.exec_ns_sum, m.e2e_ns_sum, m.padded_elements_wasted, m.padded_elements_total);
  put(out, ",\"e2e_ns_estimate\":{},\"queue_ns_estimate\":{},\"exec_ns_estimate\":{}}}",
      json_estimates(m.e2e_ns_histogram), json_estimates(m.queue_ns_histogram),
      json_estimates(m.exec_ns_histogram));
}

}  // namespace

std::string render_table(const Snapshot& now, const Snapshot* previous) {
  std::string out;
  daemon_section(out, now);
  device_section(out, now);
  const double seconds =
      previous ? static_cast<double>(now.taken_ns - previous->taken_ns) / kNsPerSecond : 0.0;
  for (std::size_t i = 0; i < now.models.size(); ++i) {
    const bool comparable = previous != nullptr && i < previous->models.size();
    model_section(out, now.models[i], comparable ? &previous->models[i] : nullptr, seconds);
  }
  client_section(out, now);
  const auto advice = suggest(now);
  put(out, "\nsuggestions:{}\n", advice.empty() ? " none" : "");
  for (const Suggestion& s : advice) put(out, "  [{}] {}\n", s.model, s.text);
  return out;
}

std::string render_json(const Snapshot& s) {
  const stats::DaemonSnapshot& d = s.daemon;
  std::string out;
  put(out,
      "{{\"daemon\":{{\"pid\":{},\"state\":\"{}\",\"version\":{},\"epoch\":{},\"uptime_ns\":{},"
      "\"heartbeat_age_ns\":{},\"numa_node\":{},\"cpus\":{},\"cpu_count\":{},\"threads\":{},"
      "\"rss_bytes\":{},\"http_address\":{},\"http_port\":{},\"max_clients\":{},"
      "\"clients_connected\":{},\"clients_total\":{},\"clients_untracked\":{}}}",
      d.pid, stats::state_name(d.state), json_string(d.version), d.epoch, d.uptime_ns,
      d.heartbeat_age_ns, d.numa_node, json_string(d.cpus), d.cpu_count, d.threads, d.rss_bytes,
      json_string(d.http_address), d.http_port, d.max_clients, d.clients_connected,
      d.clients_total, d.clients_untracked);
  put(out, ",\"devices\":[");
  for (std::size_t i = 0; i < s.devices.size(); ++i) {
    const DeviceSnapshot& dev = s.devices[i];
    put(out,
        "{}{{\"device\":\"{}\",\"name\":{},\"present\":{},\"busy_ns\":{},\"batches\":{},"
        "\"busy_fraction\":{},\"memory_bytes\":{}}}",
        i ? "," : "", dev.kind, json_string(dev.name), dev.present, dev.busy_ns, dev.batches,
        dev.busy_fraction, dev.memory_bytes);
  }
  put(out, "],\"models\":[");
  for (std::size_t i = 0; i < s.models.size(); ++i) {
    if (i) put(out, ",");
    json_model(out, s.models[i]);
  }
  put(out, "],\"clients\":[");
  for (std::size_t i = 0; i < s.clients.size(); ++i) {
    const ClientSnapshot& c = s.clients[i];
    put(out,
        "{}{{\"id\":{},\"pid\":{},\"uid\":{},\"connected_realtime_ns\":{},\"requests\":{},"
        "\"completed_ok\":{},\"completed_error\":{},\"in_flight\":{}}}",
        i ? "," : "", c.id, c.pid, c.uid, c.connected_realtime_ns, c.requests, c.completed_ok,
        c.completed_error, c.in_flight());
  }
  put(out, "],\"suggestions\":[");
  const auto advice = suggest(s);
  for (std::size_t i = 0; i < advice.size(); ++i) {
    put(out, "{}{{\"model\":{},\"text\":{}}}", i ? "," : "", json_string(advice[i].model),
        json_string(advice[i].text));
  }
  put(out, "]}}\n");
  return out;
}

}  // namespace coproc::stat
