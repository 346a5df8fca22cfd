// A read-only view of a running coprocd's registry, for tools that watch the
// daemon without disturbing it (coproc-stat, coproc-bench soak). It says hello
// on the control socket as an observer, maps the registry read-only, closes
// every other descriptor at once (so the daemon carries no client for us) and
// from then on only loads the daemon's relaxed counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coproc/segment.h"

namespace coproc::observer {

// One row of the model table the daemon published at start.
struct ModelEntry {
  std::string name;
  uint32_t max_batch = 0;  // 0: the daemon did not say
};

// Why open() failed, for callers that branch on it (coproc-stat --health).
enum class OpenError { kNone, kNoDaemon, kHelloRefused, kBadRegistry };

class RegistryView {
 public:
  RegistryView() = default;
  ~RegistryView();
  RegistryView(const RegistryView&) = delete;
  RegistryView& operator=(const RegistryView&) = delete;

  // false: see error() and error_kind().
  bool open(const std::string& socket_path);
  const std::string& error() const { return error_; }
  OpenError error_kind() const { return error_kind_; }

  const wire::RegistryHeader& header() const {
    return *reinterpret_cast<const wire::RegistryHeader*>(registry_);
  }
  // Models in model-table order; a model's index is its id in the stats page.
  const std::vector<ModelEntry>& models() const { return models_; }
  // The daemon writes one ModelStats block per writing thread per model
  // (daemon/src/batcher.h kStatsWriters), model after model; a model's
  // counters are the sum of its blocks, except the gauges and settings that
  // only block 0 carries (queue_depth, gpu_from_batch).
  uint32_t blocks_per_model() const { return blocks_per_model_; }
  const wire::ModelStats& block(std::size_t model, uint32_t k) const;

 private:
  bool fail(OpenError kind, std::string message);
  bool read_model_table();

  const std::byte* registry_ = nullptr;
  std::size_t registry_bytes_ = 0;
  std::vector<ModelEntry> models_;
  uint32_t blocks_per_model_ = 1;
  std::string error_;
  OpenError error_kind_ = OpenError::kNone;
};

}  // namespace coproc::observer
