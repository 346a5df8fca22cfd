#include "render.h"

#include <fmt/format.h>

#include <iterator>

#include "common/json_text.h"

namespace coproc::stat {

namespace {

constexpr double kNsPerSecond = 1e9;
constexpr double kNsPerMs = 1e6;

// Appends formatted text to `out`.
template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}


// Prometheus label values escape backslash, quote and newline.
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

template <std::size_t N>
std::string json_array(const std::array<uint64_t, N>& a) {
  return fmt::format("[{}]", fmt::join(a, ","));
}

std::string ms_text(double ns) { return fmt::format("{:.3f}", ns / kNsPerMs); }

void header_block(std::string& out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A cumulative histogram from log2 buckets: bucket b's values are at most
// 2^(b+1) - 1 (integers), scaled by `scale`; the last bucket is open-ended and
// appears only in +Inf. _count is the +Inf bucket, from the same reading.
template <std::size_t N>
void histogram(std::string& out, const char* name, const std::string& labels,
               const std::array<uint64_t, N>& h, double sum, double scale) {
  uint64_t cumulative = 0;
  for (uint32_t b = 0; b + 1 < N; ++b) {
    cumulative += h[b];
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", name, labels,
                   bucket_upper(b) * scale, cumulative);
  }
  cumulative += h[N - 1];
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels,
                 cumulative);
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n", name, labels, sum);
  fmt::format_to(std::back_inserter(out), "{}_count{{{}}} {}\n", name, labels, cumulative);
}

}  // namespace

std::string render_table(const Snapshot& now, const Snapshot* previous) {
  std::string out;
  put(out, "coprocd pid {}  state {}  heartbeat {:.1f} s ago{}\n", now.daemon_pid,
      state_name(now.state), static_cast<double>(now.heartbeat_age_ns) / kNsPerSecond,
      now.heartbeat_age_ns >= kStaleHeartbeatNs ? "  (STALE)" : "");
  const double seconds =
      previous ? static_cast<double>(now.taken_ns - previous->taken_ns) / kNsPerSecond : 0.0;
  for (std::size_t i = 0; i < now.models.size(); ++i) {
    const ModelSnapshot& m = now.models[i];
    put(out, "\nmodel {}\n", m.name);
    put(out, "  requests   accepted {}  completed {}", m.accepted, m.completed_total());
    if (previous && i < previous->models.size() && seconds > 0) {
      const uint64_t done = m.completed_total() - previous->models[i].completed_total();
      put(out, "  rate {:.1f} req/s", static_cast<double>(done) / seconds);
    }
    put(out, "\n  by status ");
    for (uint32_t st = 0; st < wire::kStatusCount; ++st) {
      if (m.completed[st] != 0 || st == 0) put(out, " {} {}", kStatusNames[st], m.completed[st]);
    }
    put(out,
        "\n  failures   rejected {} (queue full {}, invalid {})  expired {}  cancelled {}  "
        "dropped {}\n",
        m.rejected(), m.rejected_queue_full, m.rejected_invalid, m.expired, m.cancelled,
        m.dropped_client_gone);
    put(out, "  queue      depth");
    for (uint32_t p = 0; p < wire::kPriorityCount; ++p) {
      put(out, " {} {}", kPriorityNames[p], m.queue_depth[p]);
    }
    put(out, "\n");
    put(out, "  batches    {}  mean size {:.2f}", m.batches, m.mean_batch());
    if (m.max_batch != 0) put(out, " of max {}", m.max_batch);
    put(out, "  on gpu {}", m.batches_on_gpu);
    if (m.gpu_from_batch == 0) {
      put(out, " (cpu only)\n");
    } else {
      put(out, " (gpu from batch {})\n", m.gpu_from_batch);
    }
    put(out, "  time (ms, log2 bucket estimates)     p50      p90      p99\n");
    put(out, "    queue, per request            {:>8} {:>8} {:>8}\n",
        ms_text(bucket_percentile(m.queue_ns_histogram, 0.50)),
        ms_text(bucket_percentile(m.queue_ns_histogram, 0.90)),
        ms_text(bucket_percentile(m.queue_ns_histogram, 0.99)));
    put(out, "    execution, per batch          {:>8} {:>8} {:>8}\n",
        ms_text(bucket_percentile(m.exec_ns_histogram, 0.50)),
        ms_text(bucket_percentile(m.exec_ns_histogram, 0.90)),
        ms_text(bucket_percentile(m.exec_ns_histogram, 0.99)));
    if (m.padding_waste_pct() < 0) {
      put(out, "  padding    none\n");
    } else {
      put(out, "  padding    {:.1f}% wasted ({} of {} elements)\n", m.padding_waste_pct(),
          m.padded_elements_wasted, m.padded_elements_total);
    }
  }
  const auto advice = suggest(now);
  put(out, "\nsuggestions:{}\n", advice.empty() ? " none" : "");
  for (const Suggestion& s : advice) put(out, "  [{}] {}\n", s.model, s.text);
  return out;
}

std::string render_json(const Snapshot& s) {
  std::string out;
  put(out, "{{\"daemon_pid\":{},\"state\":\"{}\",\"heartbeat_age_ns\":{},\"models\":[",
      s.daemon_pid, state_name(s.state), s.heartbeat_age_ns);
  for (std::size_t i = 0; i < s.models.size(); ++i) {
    const ModelSnapshot& m = s.models[i];
    if (i) put(out, ",");
    put(out, "{{\"name\":{},\"max_batch\":{},\"accepted\":{},\"completed\":{{", json_string(m.name),
        m.max_batch, m.accepted);
    for (uint32_t st = 0; st < wire::kStatusCount; ++st) {
      put(out, "{}\"{}\":{}", st ? "," : "", kStatusNames[st], m.completed[st]);
    }
    put(out,
        "}},\"completed_total\":{},\"rejected_queue_full\":{},\"rejected_invalid\":{},"
        "\"expired\":{},\"cancelled\":{},\"dropped_client_gone\":{},\"queue_depth\":{},"
        "\"batches\":{},\"batches_on_gpu\":{},\"gpu_from_batch\":{},\"batch_rows\":{},"
        "\"mean_batch\":{},\"batch_size_histogram\":{},\"queue_ns_histogram\":{},"
        "\"exec_ns_histogram\":{},\"queue_ns_sum\":{},\"exec_ns_sum\":{},"
        "\"padded_elements_wasted\":{},\"padded_elements_total\":{}",
        m.completed_total(), m.rejected_queue_full, m.rejected_invalid, m.expired, m.cancelled,
        m.dropped_client_gone, json_array(m.queue_depth), m.batches, m.batches_on_gpu,
        m.gpu_from_batch, m.batch_rows, m.mean_batch(), json_array(m.batch_size_histogram),
        json_array(m.queue_ns_histogram), json_array(m.exec_ns_histogram), m.queue_ns_sum,
        m.exec_ns_sum, m.padded_elements_wasted, m.padded_elements_total);
    put(out, ",\"queue_ns_estimate\":{{\"p50\":{},\"p90\":{},\"p99\":{}}}",
        bucket_percentile(m.queue_ns_histogram, 0.50),
        bucket_percentile(m.queue_ns_histogram, 0.90),
        bucket_percentile(m.queue_ns_histogram, 0.99));
    put(out, ",\"exec_ns_estimate\":{{\"p50\":{},\"p90\":{},\"p99\":{}}}}}",
        bucket_percentile(m.exec_ns_histogram, 0.50), bucket_percentile(m.exec_ns_histogram, 0.90),
        bucket_percentile(m.exec_ns_histogram, 0.99));
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

std::string render_prometheus(const Snapshot& s) {
  std::string out;
  header_block(out, "coproc_up", "gauge", "1 when coprocd answered and is ready.");
  put(out, "coproc_up {}\n", s.state == static_cast<uint32_t>(wire::DaemonState::kReady) ? 1 : 0);
  header_block(out, "coproc_heartbeat_age_seconds", "gauge",
               "Seconds since the daemon's control loop last beat (it beats every second).");
  put(out, "coproc_heartbeat_age_seconds {}\n",
      static_cast<double>(s.heartbeat_age_ns) / kNsPerSecond);

  header_block(out, "coproc_requests_total", "counter", "Requests answered, by status.");
  for (const ModelSnapshot& m : s.models) {
    for (uint32_t st = 0; st < wire::kStatusCount; ++st) {
      put(out, "coproc_requests_total{{model=\"{}\",status=\"{}\"}} {}\n", label(m.name),
          kStatusNames[st], m.completed[st]);
    }
  }
  header_block(out, "coproc_accepted_total", "counter", "Requests admitted to the queue.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_accepted_total{{model=\"{}\"}} {}\n", label(m.name), m.accepted);
  }
  header_block(out, "coproc_rejected_total", "counter",
               "Requests refused at admission, by reason.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_rejected_total{{model=\"{}\",reason=\"queue_full\"}} {}\n", label(m.name),
        m.rejected_queue_full);
    put(out, "coproc_rejected_total{{model=\"{}\",reason=\"invalid\"}} {}\n", label(m.name),
        m.rejected_invalid);
  }
  header_block(out, "coproc_expired_total", "counter",
               "Requests whose deadline passed before they ran.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_expired_total{{model=\"{}\"}} {}\n", label(m.name), m.expired);
  }
  header_block(out, "coproc_cancelled_total", "counter", "Requests cancelled before they ran.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_cancelled_total{{model=\"{}\"}} {}\n", label(m.name), m.cancelled);
  }
  header_block(out, "coproc_dropped_total", "counter",
               "Queued requests dropped because their client went away.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_dropped_total{{model=\"{}\"}} {}\n", label(m.name), m.dropped_client_gone);
  }
  header_block(out, "coproc_queue_depth", "gauge", "Requests queued now, by priority.");
  for (const ModelSnapshot& m : s.models) {
    for (uint32_t p = 0; p < wire::kPriorityCount; ++p) {
      put(out, "coproc_queue_depth{{model=\"{}\",priority=\"{}\"}} {}\n", label(m.name),
          kPriorityNames[p], m.queue_depth[p]);
    }
  }
  header_block(out, "coproc_batches_total", "counter", "Batches run, by device.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_batches_total{{model=\"{}\",device=\"cpu\"}} {}\n", label(m.name),
        m.batches - std::min(m.batches, m.batches_on_gpu));
    put(out, "coproc_batches_total{{model=\"{}\",device=\"gpu\"}} {}\n", label(m.name),
        m.batches_on_gpu);
  }
  header_block(out, "coproc_gpu_from_batch", "gauge",
               "Batches of at least this many rows run on the OpenCL device; 0: none do.");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_gpu_from_batch{{model=\"{}\"}} {}\n", label(m.name), m.gpu_from_batch);
  }
  header_block(out, "coproc_padding_elements_total", "counter",
               "Elements of length-padded batches, by kind (padding or total).");
  for (const ModelSnapshot& m : s.models) {
    put(out, "coproc_padding_elements_total{{model=\"{}\",kind=\"padding\"}} {}\n", label(m.name),
        m.padded_elements_wasted);
    put(out, "coproc_padding_elements_total{{model=\"{}\",kind=\"total\"}} {}\n", label(m.name),
        m.padded_elements_total);
  }
  header_block(out, "coproc_batch_size", "histogram",
               "Rows per batch (buckets are powers of two minus one).");
  for (const ModelSnapshot& m : s.models) {
    histogram(out, "coproc_batch_size", fmt::format("model=\"{}\"", label(m.name)),
              m.batch_size_histogram, static_cast<double>(m.batch_rows), 1.0);
  }
  header_block(out, "coproc_request_queue_seconds", "histogram",
               "Time a request waited from receipt to the start of its batch (log2 buckets).");
  for (const ModelSnapshot& m : s.models) {
    histogram(out, "coproc_request_queue_seconds", fmt::format("model=\"{}\"", label(m.name)),
              m.queue_ns_histogram, static_cast<double>(m.queue_ns_sum) / kNsPerSecond,
              1.0 / kNsPerSecond);
  }
  header_block(out, "coproc_request_execution_seconds", "histogram",
               "Execution time of the batches that ran the requests, one observation per batch "
               "(log2 buckets).");
  for (const ModelSnapshot& m : s.models) {
    histogram(out, "coproc_request_execution_seconds", fmt::format("model=\"{}\"", label(m.name)),
              m.exec_ns_histogram, static_cast<double>(m.exec_ns_sum) / kNsPerSecond,
              1.0 / kNsPerSecond);
  }
  return out;
}

}  // namespace coproc::stat
