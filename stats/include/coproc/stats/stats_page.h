// A checked view of a mapped registry: the header, the model table and the
// stats areas, each verified to lie inside the mapping before it is used.
// The daemon reads its own registry through it (/metrics, the rates it
// publishes) and the tools read a mapping they got from the daemon; neither
// writes. segment.h holds the layout and the readers' contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coproc/segment.h"

namespace coproc::stats {

// One row of the model table the daemon published at start.
struct ModelEntry {
  std::string name;
  uint32_t max_batch = 0;  // 0: the daemon did not say
};

class StatsPage {
 public:
  // Checks the magic, the layout version and every area's bounds, and reads
  // the model table. false: `error` says why.
  bool open(const std::byte* registry, std::size_t bytes, std::string* error);

  const wire::RegistryHeader& header() const {
    return *reinterpret_cast<const wire::RegistryHeader*>(registry_);
  }
  // Models in model-table order; a model's index is its id in the stats page.
  const std::vector<ModelEntry>& models() const { return models_; }
  // Writer blocks per model (segment.h kStatsWriters); a model's counters are
  // the sum of its blocks, its gauges, settings and rates are block 0's.
  uint32_t blocks_per_model() const { return blocks_per_model_; }
  const wire::ModelStats& block(std::size_t model, uint32_t k) const;
  uint32_t client_slots() const { return header().client_slots; }
  const wire::ClientStats& client(uint32_t slot) const;
  uint32_t device_count() const { return header().device_count; }
  const wire::DeviceStats& device(uint32_t d) const;

 private:
  bool read_model_table(std::string* error);

  const std::byte* registry_ = nullptr;
  std::size_t bytes_ = 0;
  std::vector<ModelEntry> models_;
  uint32_t blocks_per_model_ = 1;
};

}  // namespace coproc::stats
