#include "coproc/stats/exposition.h"

#include <fmt/format.h>

#include <iterator>

namespace coproc::stats {

namespace {

constexpr double kNsPerSecond = 1e9;
// Histogram lines: only the bucket edges that are powers of two, so a
// scrape stays small (the page keeps four buckets per power of two for
// coproc-stat's percentiles). Latencies from 256 ns to 68.7 s.
constexpr uint64_t kFirstLatencyEdgeNs = uint64_t{1} << 8;
constexpr uint64_t kLastLatencyEdgeNs = uint64_t{1} << 36;

template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

// Label values escape backslash, quote and newline.
std::string label(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  put(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

bool power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// A cumulative histogram over the page's log-linear buckets: a line at each
// power-of-two edge within [first_edge, last_edge], values scaled by `scale`,
// then +Inf, _sum and _count (from the same reading, so _count is +Inf's).
template <std::size_t N>
void histogram(std::string& out, const char* name, const std::string& labels,
               const std::array<uint64_t, N>& h, double sum, double scale, uint64_t first_edge,
               uint64_t last_edge) {
  uint64_t cumulative = 0;
  for (uint32_t b = 0; b + 1 < N; ++b) {
    cumulative += h[b];
    const uint64_t edge = wire::histogram_bucket_upper(b);
    if (edge < first_edge || edge > last_edge || !power_of_two(edge)) continue;
    put(out, "{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, static_cast<double>(edge) * scale,
        cumulative);
  }
  cumulative += h[N - 1];
  put(out, "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  put(out, "{}_sum{{{}}} {}\n", name, labels, sum);
  put(out, "{}_count{{{}}} {}\n", name, labels, cumulative);
}

std::string model_label(const ModelSnapshot& m) {
  return fmt::format("model=\"{}\"", label(m.name));
}

std::string client_labels(const ClientSnapshot& c) {
  return fmt::format("client=\"{}\",pid=\"{}\",uid=\"{}\"", c.id, c.pid, c.uid);
}

void daemon_metrics(std::string& out, const Snapshot& s) {
  const DaemonSnapshot& d = s.daemon;
  family(out, "coproc_up", "gauge", "1 when coprocd is ready to serve.");
  put(out, "coproc_up {}\n", d.state == static_cast<uint32_t>(wire::DaemonState::kReady) ? 1 : 0);
  family(out, "coproc_info", "gauge", "coprocd's version and placement; always 1.");
  put(out, "coproc_info{{version=\"{}\",state=\"{}\",numa_node=\"{}\",cpus=\"{}\"}} 1\n",
      label(d.version), state_name(d.state), d.numa_node, label(d.cpus));
  family(out, "coproc_heartbeat_age_seconds", "gauge",
         "Seconds since the daemon's control loop last beat (it beats every second).");
  put(out, "coproc_heartbeat_age_seconds {}\n",
      static_cast<double>(d.heartbeat_age_ns) / kNsPerSecond);
  family(out, "process_start_time_seconds", "gauge", "Start time of coprocd since the Unix epoch.");
  put(out, "process_start_time_seconds {}\n", static_cast<double>(d.epoch) / kNsPerSecond);
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory of coprocd.");
  put(out, "process_resident_memory_bytes {}\n", d.rss_bytes);
  family(out, "coproc_threads", "gauge", "Threads of coprocd.");
  put(out, "coproc_threads {}\n", d.threads);
  family(out, "coproc_clients", "gauge", "Clients connected now.");
  put(out, "coproc_clients {}\n", d.clients_connected);
  family(out, "coproc_clients_max", "gauge", "Clients allowed at once (limits.max_clients).");
  put(out, "coproc_clients_max {}\n", d.max_clients);
  family(out, "coproc_client_connections_total", "counter", "Clients accepted since start.");
  put(out, "coproc_client_connections_total {}\n", d.clients_total);
}

// One sample per model and index: name{model="...",key="names[i]"} (m.*values)[i].
template <std::size_t N>
void per_model_array(std::string& out, const Snapshot& s, const char* name, const char* key,
                     const std::array<const char*, N>& names,
                     std::array<uint64_t, N> ModelSnapshot::*values) {
  for (const ModelSnapshot& m : s.models) {
    for (std::size_t i = 0; i < N; ++i) {
      put(out, "{}{{{},{}=\"{}\"}} {}\n", name, model_label(m), key, names[i], (m.*values)[i]);
    }
  }
}

void model_counters(std::string& out, const Snapshot& s) {
  family(out, "coproc_requests_total", "counter", "Requests answered, by status.");
  per_model_array(out, s, "coproc_requests_total", "status", kStatusNames,
                  &ModelSnapshot::completed);
  family(out, "coproc_requests_accepted_total", "counter", "Requests admitted to the queue.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_requests_accepted_total{{{}}} {}\n", model_label(m), m.accepted);
  }
  family(out, "coproc_requests_rejected_total", "counter",
         "Requests refused at admission, by reason.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_requests_rejected_total{{{},reason=\"queue_full\"}} {}\n", model_label(m),
        m.rejected_queue_full);
    put(out, "coproc_requests_rejected_total{{{},reason=\"invalid\"}} {}\n", model_label(m),
        m.rejected_invalid);
  }
  struct Simple {
    const char* name;
    const char* type;
    const char* help;
    uint64_t ModelSnapshot::*field;
  };
  const Simple simple[] = {
      {"coproc_requests_expired_total", "counter",
       "Requests whose deadline passed before they ran.", &ModelSnapshot::expired},
      {"coproc_requests_cancelled_total", "counter", "Requests cancelled before they ran.",
       &ModelSnapshot::cancelled},
      {"coproc_requests_dropped_total", "counter",
       "Queued requests dropped because their client went away.",
       &ModelSnapshot::dropped_client_gone},
      {"coproc_gpu_from_batch", "gauge",
       "Batches of at least this many rows run on the OpenCL device; 0: none do.",
       &ModelSnapshot::gpu_from_batch},
  };
  for (const Simple& f : simple) {
    family(out, f.name, f.type, f.help);
    for (const ModelSnapshot& m : s.models)
      put(out, "{}{{{}}} {}\n", f.name, model_label(m), m.*f.field);
  }
  family(out, "coproc_model_info", "gauge", "A served model and its device setting; always 1.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_model_info{{{},device=\"{}\",max_batch=\"{}\"}} 1\n", model_label(m),
        device_mode_name(m.device_mode), m.max_batch);
  }
  family(out, "coproc_queue_depth", "gauge", "Requests queued now, by priority.");
  per_model_array(out, s, "coproc_queue_depth", "priority", kPriorityNames,
                  &ModelSnapshot::queue_depth);
  family(out, "coproc_batches_total", "counter", "Batches run, by device.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_batches_total{{{},device=\"cpu\"}} {}\n", model_label(m),
        m.batches - std::min(m.batches, m.batches_on_gpu));
    put(out, "coproc_batches_total{{{},device=\"gpu\"}} {}\n", model_label(m), m.batches_on_gpu);
  }
  family(out, "coproc_padding_elements_total", "counter",
         "Elements of length-padded batches, by kind (padding or total).");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_padding_elements_total{{{},kind=\"padding\"}} {}\n", model_label(m),
        m.padded_elements_wasted);
    put(out, "coproc_padding_elements_total{{{},kind=\"total\"}} {}\n", model_label(m),
        m.padded_elements_total);
  }
}

void model_histograms(std::string& out, const Snapshot& s) {
  family(out, "coproc_batch_size", "histogram", "Rows per batch.");
  for (const ModelSnapshot& m : s.models) {
    histogram(out, "coproc_batch_size", model_label(m), m.batch_size_histogram,
              static_cast<double>(m.batch_rows), 1.0, 1, uint64_t{1} << 16);
  }
  struct Latency {
    const char* name;
    const char* help;
    LatencyHistogram ModelSnapshot::*histogram;
    uint64_t ModelSnapshot::*sum;
  };
  const Latency latencies[] = {
      {"coproc_request_duration_seconds",
       "Time from the daemon reading an OK request to pushing its completion.",
       &ModelSnapshot::e2e_ns_histogram, &ModelSnapshot::e2e_ns_sum},
      {"coproc_request_queue_seconds",
       "Time a request waited from receipt to the start of the run that served it.",
       &ModelSnapshot::queue_ns_histogram, &ModelSnapshot::queue_ns_sum},
      {"coproc_batch_execution_seconds", "Run time of each batch (one observation per batch).",
       &ModelSnapshot::exec_ns_histogram, &ModelSnapshot::exec_ns_sum},
  };
  for (const Latency& l : latencies) {
    family(out, l.name, "histogram", l.help);
    for (const ModelSnapshot& m : s.models) {
      histogram(out, l.name, model_label(m), m.*l.histogram,
                static_cast<double>(m.*l.sum) / kNsPerSecond, 1.0 / kNsPerSecond,
                kFirstLatencyEdgeNs, kLastLatencyEdgeNs);
    }
  }
}

void client_metrics(std::string& out, const Snapshot& s) {
  family(out, "coproc_client_requests_total", "counter", "Requests a connected client submitted.");
  for (const ClientSnapshot& c : s.clients) {
    put(out, "coproc_client_requests_total{{{}}} {}\n", client_labels(c), c.requests);
  }
  family(out, "coproc_client_completions_total", "counter",
         "Completions sent to a connected client, by result.");
  for (const ClientSnapshot& c : s.clients) {
    put(out, "coproc_client_completions_total{{{},result=\"ok\"}} {}\n", client_labels(c),
        c.completed_ok);
    put(out, "coproc_client_completions_total{{{},result=\"error\"}} {}\n", client_labels(c),
        c.completed_error);
  }
  family(out, "coproc_client_in_flight", "gauge",
         "Requests of a connected client not answered yet.");
  for (const ClientSnapshot& c : s.clients) {
    put(out, "coproc_client_in_flight{{{}}} {}\n", client_labels(c), c.in_flight());
  }
  family(out, "coproc_client_connected_time_seconds", "gauge",
         "When a connected client said hello, since the Unix epoch.");
  for (const ClientSnapshot& c : s.clients) {
    put(out, "coproc_client_connected_time_seconds{{{}}} {}\n", client_labels(c),
        static_cast<double>(c.connected_realtime_ns) / kNsPerSecond);
  }
}

void device_metrics(std::string& out, const Snapshot& s) {
  family(out, "coproc_device_info", "gauge", "A device coprocd runs models on; always 1.");
  for (const DeviceSnapshot& d : s.devices) {
    if (d.present)
      put(out, "coproc_device_info{{device=\"{}\",name=\"{}\"}} 1\n", d.kind, label(d.name));
  }
  family(out, "coproc_device_busy_seconds_total", "counter",
         "Time the device spent running batches (rate() is its busy fraction).");
  for (const DeviceSnapshot& d : s.devices) {
    if (d.present) {
      put(out, "coproc_device_busy_seconds_total{{device=\"{}\"}} {}\n", d.kind,
          static_cast<double>(d.busy_ns) / kNsPerSecond);
    }
  }
  family(out, "coproc_device_memory_bytes", "gauge",
         "Memory held for the models: cpu, weights in host memory; gpu, OpenCL buffers.");
  for (const DeviceSnapshot& d : s.devices) {
    if (d.present)
      put(out, "coproc_device_memory_bytes{{device=\"{}\"}} {}\n", d.kind, d.memory_bytes);
  }
}

}  // namespace

std::string render_prometheus(const Snapshot& s) {
  std::string out;
  out.reserve(16384 + 12288 * s.models.size());
  daemon_metrics(out, s);
  model_counters(out, s);
  model_histograms(out, s);
  client_metrics(out, s);
  device_metrics(out, s);
  return out;
}

std::string render_prometheus_down() {
  std::string out;
  family(out, "coproc_up", "gauge", "1 when coprocd is ready to serve.");
  out += "coproc_up 0\n";
  return out;
}

}  // namespace coproc::stats
