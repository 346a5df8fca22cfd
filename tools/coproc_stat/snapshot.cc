#include "snapshot.h"

#include <fmt/format.h>
#include <time.h>

namespace coproc::stat {

namespace {

// Thresholds of the tuning suggestions.
constexpr double kLowBatchFillFraction = 0.25;   // mean batch below a quarter of max_batch...
constexpr double kHighQueueP90Ns = 1'000'000;    // ...while p90 queue time is over 1 ms
constexpr double kManyFailuresFraction = 0.01;   // expirations, rejections: over 1% of requests
constexpr double kHighPaddingWastePct = 25.0;    // padding: over a quarter of padded elements
constexpr uint64_t kMinRequestsForAdvice = 100;  // fewer requests say nothing yet

uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t get(const std::atomic<uint64_t>& a) {
  // relaxed: each counter is one atomic, never torn; two counters may be from
  // slightly different moments (segment.h's contract for tools).
  return a.load(std::memory_order_relaxed);
}

template <std::size_t N>
void add(std::array<uint64_t, N>& to, const std::atomic<uint64_t> (&from)[N]) {
  for (std::size_t i = 0; i < N; ++i) to[i] += get(from[i]);
}

std::string ms(double ns) { return fmt::format("{:.2f} ms", ns / 1e6); }

}  // namespace

const std::array<const char*, wire::kStatusCount> kStatusNames = {
    "ok",        "invalid_argument", "not_found",   "deadline_exceeded", "resource_exhausted",
    "cancelled", "internal",         "unavailable", "permission_denied", "unsupported",
    "bad_model"};

const std::array<const char*, wire::kPriorityCount> kPriorityNames = {"critical", "high", "normal",
                                                                      "low"};

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

Snapshot read_snapshot(const observer::RegistryView& view) {
  Snapshot s;
  const auto& h = view.header();
  s.daemon_pid = h.daemon_pid;
  // acquire: pairs with the daemon's release in set_state().
  s.state = h.state.load(std::memory_order_acquire);
  s.taken_ns = monotonic_ns();
  const uint64_t beat = get(h.heartbeat_ns);
  s.heartbeat_age_ns = s.taken_ns > beat ? s.taken_ns - beat : 0;
  for (std::size_t m = 0; m < view.models().size(); ++m) {
    ModelSnapshot ms;
    ms.name = view.models()[m].name;
    ms.max_batch = view.models()[m].max_batch;
    for (uint32_t k = 0; k < view.blocks_per_model(); ++k) {
      const wire::ModelStats& b = view.block(m, k);
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
      ms.queue_ns_sum += get(b.queue_ns_sum);
      ms.exec_ns_sum += get(b.exec_ns_sum);
      ms.padded_elements_wasted += get(b.padded_elements_wasted);
      ms.padded_elements_total += get(b.padded_elements_total);
    }
    // The gauge and the setting live in block 0 only (batcher.cc publish_depth_locked).
    const wire::ModelStats& first = view.block(m, 0);
    for (uint32_t p = 0; p < wire::kPriorityCount; ++p)
      ms.queue_depth[p] = get(first.queue_depth[p]);
    ms.gpu_from_batch = get(first.gpu_from_batch);
    s.models.push_back(std::move(ms));
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
      const double lo = b == 0 ? 0.0 : static_cast<double>(uint64_t{1} << b);
      const double hi = static_cast<double>(uint64_t{2} << b);
      return lo + (hi - lo) * (rank - below) / count;
    }
    below += count;
  }
  return bucket_upper(N - 1);
}

template double bucket_percentile(const std::array<uint64_t, wire::kLatencyBuckets>&, double);

std::vector<Suggestion> suggest(const Snapshot& s) {
  std::vector<Suggestion> out;
  for (const ModelSnapshot& m : s.models) {
    const uint64_t requests = m.accepted + m.rejected();
    if (requests < kMinRequestsForAdvice) continue;
    const double queue_p90 = bucket_percentile(m.queue_ns_histogram, 0.90);
    if (m.max_batch > 1 && m.batches > 0 && m.mean_batch() < kLowBatchFillFraction * m.max_batch &&
        queue_p90 > kHighQueueP90Ns) {
      out.push_back(
          {m.name,
           fmt::format(
               "mean batch {:.1f} of max_batch {} while p90 queue time is {}: batches leave before "
               "they fill; lower max_wait_us or max_batch, or add clients",
               m.mean_batch(), m.max_batch, ms(queue_p90))});
    }
    const double frac = 1.0 / static_cast<double>(requests);
    if (static_cast<double>(m.expired) * frac > kManyFailuresFraction) {
      out.push_back(
          {m.name,
           fmt::format(
               "{} of {} requests expired before running ({:.1f}%), p90 queue time {}: deadlines "
               "are "
               "shorter than the queue; raise deadlines, lower max_wait_us, or add capacity",
               m.expired, requests, 100.0 * static_cast<double>(m.expired) * frac, ms(queue_p90))});
    }
    if (static_cast<double>(m.rejected_queue_full) * frac > kManyFailuresFraction) {
      out.push_back(
          {m.name,
           fmt::format(
               "{} of {} requests rejected with the queue full ({:.1f}%): raise the model's queue "
               "limit or add capacity",
               m.rejected_queue_full, requests,
               100.0 * static_cast<double>(m.rejected_queue_full) * frac)});
    }
    if (m.padding_waste_pct() > kHighPaddingWastePct) {
      out.push_back({m.name, fmt::format("{:.1f}% of padded elements are padding ({} of {}): add "
                                         "length_buckets closer to the "
                                         "request lengths",
                                         m.padding_waste_pct(), m.padded_elements_wasted,
                                         m.padded_elements_total)});
    }
  }
  return out;
}

}  // namespace coproc::stat
