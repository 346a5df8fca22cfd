#include "coproc/stats/stats_page.h"

#include "coproc/coproc_generated.h"

namespace coproc::stats {

namespace {
// An array of `count` elements of `stride` bytes (at least `min_stride`) at `offset` fits.
bool area_fits(uint64_t offset, uint64_t count, uint64_t stride, uint64_t min_stride,
               std::size_t bytes) {
  if (stride < min_stride || offset > bytes) return false;
  return count == 0 || (bytes - offset) / stride >= count;
}
}  // namespace

bool StatsPage::open(const std::byte* registry, std::size_t bytes, std::string* error) {
  registry_ = registry;
  bytes_ = bytes;
  if (bytes < sizeof(wire::RegistryHeader)) {
    *error = "the registry is smaller than its header";
    return false;
  }
  const auto& h = header();
  // acquire: pairs with the daemon's release store of layout_version, made
  // after every other header field.
  const uint32_t version = h.layout_version.load(std::memory_order_acquire);
  if (h.magic != wire::kRegistryMagic || version != wire::kRegistryLayoutVersion) {
    *error = "registry layout " + std::to_string(version) + ", this reader knows " +
             std::to_string(wire::kRegistryLayoutVersion);
    return false;
  }
  if (!area_fits(h.stats_offset, h.stats_count, h.stats_stride, sizeof(wire::ModelStats), bytes) ||
      !area_fits(h.client_stats_offset, h.client_slots, h.client_stats_stride,
                 sizeof(wire::ClientStats), bytes) ||
      !area_fits(h.device_stats_offset, h.device_count, h.device_stats_stride,
                 sizeof(wire::DeviceStats), bytes)) {
    *error = "a stats area lies outside the registry";
    return false;
  }
  return read_model_table(error);
}

bool StatsPage::read_model_table(std::string* error) {
  const auto& h = header();
  // acquire: pairs with the daemon's release store after writing the table.
  const uint64_t bytes = h.model_table_bytes.load(std::memory_order_acquire);
  if (h.model_table_offset > bytes_ || bytes > bytes_ - h.model_table_offset) {
    *error = "the model table lies outside the registry";
    return false;
  }
  const auto* data = reinterpret_cast<const uint8_t*>(registry_ + h.model_table_offset);
  flatbuffers::Verifier verifier(data, bytes);
  if (bytes == 0 || !verifier.VerifyBuffer<fb::ModelTable>(nullptr)) {
    *error = "the model table failed verification";
    return false;
  }
  const auto* table = flatbuffers::GetRoot<fb::ModelTable>(data);
  models_.clear();
  if (table->models()) {
    for (const auto* m : *table->models()) {
      models_.push_back({m->name() ? m->name()->str() : "", m->max_batch()});
    }
  }
  // A daemon may serve no models (yet): no stats blocks then.
  if (models_.empty() ? h.stats_count != 0
                      : h.stats_count < models_.size() || h.stats_count % models_.size() != 0) {
    *error = "the registry has " + std::to_string(h.stats_count) + " stats blocks for " +
             std::to_string(models_.size()) + " models";
    return false;
  }
  blocks_per_model_ = models_.empty() ? 1 : h.stats_count / static_cast<uint32_t>(models_.size());
  return true;
}

const wire::ModelStats& StatsPage::block(std::size_t model, uint32_t k) const {
  const uint64_t index = model * blocks_per_model_ + k;
  return *reinterpret_cast<const wire::ModelStats*>(registry_ + header().stats_offset +
                                                    index * header().stats_stride);
}

const wire::ClientStats& StatsPage::client(uint32_t slot) const {
  return *reinterpret_cast<const wire::ClientStats*>(registry_ + header().client_stats_offset +
                                                     uint64_t{slot} * header().client_stats_stride);
}

const wire::DeviceStats& StatsPage::device(uint32_t d) const {
  return *reinterpret_cast<const wire::DeviceStats*>(registry_ + header().device_stats_offset +
                                                     uint64_t{d} * header().device_stats_stride);
}

}  // namespace coproc::stats
