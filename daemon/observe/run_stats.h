// Every counter a request moves on its way through the daemon: the model's ModelStats block and
// the devices' busy time in the stats page (coproc/segment.h). One place, so the books the tests
// balance (accepted + rejected_queue_full + rejected_invalid == sum(completed) +
// dropped_client_gone, once idle) are kept by one file, and a new metric is added here and
// called from where its event happens.
//
// Single writer: a model has kStatsWriters blocks, and block k is written only by writer k
// (kPollerWriter: the poller thread, which also runs the inline fast path and answers cancels;
// kWorkerWriter: the batch worker). A RunStats is bound to one writer and used on that writer's
// thread only, so a counter is bumped with a relaxed load and store instead of a locked
// read-modify-write: nothing else writes it, and a reader (coproc-stat, /metrics) needs only
// each counter untorn, which a relaxed atomic gives. The gauges and settings below have their
// own writers (segment.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "coproc/base/result.h"
#include "coproc/segment.h"
#include "observe/registry.h"

namespace coproc::daemon {

struct LoadedModel;

// ModelStats blocks per model: one per writing thread.
inline constexpr uint32_t kStatsWriters = wire::kStatsWriters;
inline constexpr uint32_t kPollerWriter = 0;
inline constexpr uint32_t kWorkerWriter = 1;
static_assert(kWorkerWriter < kStatsWriters);

// The counters of one writer. Cheap to copy: a registry reference and the writer's index.
class RunStats {
 public:
  RunStats(Registry& registry, uint32_t writer) : registry_(registry), writer_(writer) {}

  uint32_t writer() const { return writer_; }

  // Admitted to a queue, or run at once on the poller.
  void accepted(uint32_t model) { bump(block(model).accepted); }
  // Refused for its shapes against the model, or over limits.max_request_rows.
  void rejected_invalid(uint32_t model) { bump(block(model).rejected_invalid); }
  void rejected_queue_full(uint32_t model) { bump(block(model).rejected_queue_full); }
  // A Completion sent (or dropped on overflow) with `code`, OK or an error.
  void completed(uint32_t model, ErrorCode code) {
    bump(block(model).completed[static_cast<int>(code)]);
  }
  // An OK completion's latencies: receipt by the poller to the start of its batch, and to its
  // Completion pushed. Counts the completion too.
  void completed_ok(uint32_t model, uint64_t queue_ns, uint64_t e2e_ns);
  // Stopped without (all of) its run: cancelled (CANCELLED) or its deadline passed.
  void stopped(uint32_t model, ErrorCode code) {
    wire::ModelStats& st = block(model);
    bump(code == ErrorCode::kCancelled ? st.cancelled : st.expired);
  }
  // Queued work of a client that died: nobody reads its answer.
  void dropped_client_gone(uint32_t model) { bump(block(model).dropped_client_gone); }
  // One run of the model (a batch, a request alone, or a chunk): its size, its time, and the
  // device's busy time.
  void ran(uint32_t model, bool on_gpu, uint64_t rows, uint64_t exec_ns);
  // Elements a batch padded along the variable-length dim: wasted to its length bucket, and all
  // the batch's elements at the padded length (0 for a model without that dim).
  void padded(uint32_t model, uint64_t wasted_elements, uint64_t total_elements);

 private:
  wire::ModelStats& block(uint32_t model) const {
    return registry_.model_stats(model * kStatsWriters + writer_);
  }
  static void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  Registry& registry_;
  uint32_t writer_;
};

// The queue depth gauge of a model by priority (block 0): stored by whichever thread holds the
// dispatcher's lock, which orders the writers; relaxed, a reader wants only a recent value.
void publish_queue_depth(Registry& registry, uint32_t model, std::span<const std::size_t> depth);

// The model's device settings (block 0), once at start, before any reader can map the page.
void publish_model_settings(Registry& registry, const LoadedModel& model);

}  // namespace coproc::daemon
