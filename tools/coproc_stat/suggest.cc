#include "suggest.h"

#include <fmt/format.h>

namespace coproc::stat {

namespace {

// Thresholds of the tuning suggestions.
constexpr double kLowBatchFillFraction = 0.25;   // mean batch below a quarter of max_batch...
constexpr double kHighQueueP90Ns = 1'000'000;    // ...while p90 queue time is over 1 ms
constexpr double kManyFailuresFraction = 0.01;   // expirations, rejections: over 1% of requests
constexpr double kHighPaddingWastePct = 25.0;    // padding: over a quarter of padded elements
constexpr uint64_t kMinRequestsForAdvice = 100;  // fewer requests say nothing yet
constexpr double kSaturatedBusyFraction = 0.90;  // a device busy over 90% of the last second

std::string ms(double ns) { return fmt::format("{:.2f} ms", ns / 1e6); }

}  // namespace

std::vector<Suggestion> suggest(const stats::Snapshot& s) {
  std::vector<Suggestion> out;
  for (const stats::ModelSnapshot& m : s.models) {
    const uint64_t requests = m.accepted + m.rejected();
    if (requests < kMinRequestsForAdvice) continue;
    const double queue_p90 = stats::bucket_percentile(m.queue_ns_histogram, 0.90);
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
  for (const stats::DeviceSnapshot& d : s.devices) {
    if (!d.present || d.busy_fraction < kSaturatedBusyFraction) continue;
    out.push_back(
        {"device " + d.kind,
         fmt::format("busy {:.0f}% of the last second: requests queue behind it; give it more "
                     "threads (executor.cpu_threads, intra_op_threads), move a model to {}, or "
                     "spread the load over another daemon",
                     100.0 * d.busy_fraction, d.kind == "cpu" ? "device auto or gpu" : "the cpu")});
  }
  return out;
}

}  // namespace coproc::stat
