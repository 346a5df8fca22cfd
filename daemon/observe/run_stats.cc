#include "observe/run_stats.h"

#include "models/models.h"

namespace coproc::daemon {

void RunStats::completed_ok(uint32_t model, uint64_t queue_ns, uint64_t e2e_ns) {
  wire::ModelStats& st = block(model);
  bump(st.completed[static_cast<int>(ErrorCode::kOk)]);
  bump(st.queue_ns_histogram[wire::histogram_bucket(queue_ns, wire::kLatencyBuckets)]);
  bump(st.queue_ns_sum, queue_ns);
  bump(st.e2e_ns_histogram[wire::histogram_bucket(e2e_ns, wire::kLatencyBuckets)]);
  bump(st.e2e_ns_sum, e2e_ns);
}

void RunStats::ran(uint32_t model, bool on_gpu, uint64_t rows, uint64_t exec_ns) {
  wire::ModelStats& st = block(model);
  bump(st.batches);
  if (on_gpu) bump(st.batches_on_gpu);
  bump(st.batch_rows, rows);
  bump(st.batch_size_histogram[wire::histogram_bucket(rows, wire::kBatchSizeBuckets)]);
  bump(st.exec_ns_histogram[wire::histogram_bucket(exec_ns, wire::kLatencyBuckets)]);
  bump(st.exec_ns_sum, exec_ns);
  wire::DeviceStats::Busy& device = registry_.device_stats(on_gpu ? 1 : 0).by_writer[writer_];
  bump(device.busy_ns, exec_ns);
  bump(device.batches);
}

void RunStats::padded(uint32_t model, uint64_t wasted_elements, uint64_t total_elements) {
  wire::ModelStats& st = block(model);
  bump(st.padded_elements_wasted, wasted_elements);
  if (total_elements > 0) bump(st.padded_elements_total, total_elements);
}

void publish_queue_depth(Registry& registry, uint32_t model, std::span<const std::size_t> depth) {
  wire::ModelStats& st = registry.model_stats(model * kStatsWriters + kPollerWriter);
  for (std::size_t p = 0; p < depth.size(); ++p) {
    st.queue_depth[p].store(depth[p], std::memory_order_relaxed);
  }
}

void publish_model_settings(Registry& registry, const LoadedModel& model) {
  wire::ModelStats& settings = registry.model_stats(model.id * kStatsWriters + kPollerWriter);
  settings.gpu_from_batch.store(model.gpu_from_batch, std::memory_order_relaxed);
  settings.device_mode.store(static_cast<uint64_t>(to_wire(model.device)),
                             std::memory_order_relaxed);
}

}  // namespace coproc::daemon
