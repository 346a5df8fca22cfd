// The models the daemon serves: loaded once at start, shared read-only by
// every client and thread. Each gets an id (its index in the registry's model
// table) and a measured batch-1 execution time, which decides whether its
// requests run inline on the poller or go to the executor thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "runtime/model.h"

namespace coproc::daemon {

struct LoadedModel {
  uint32_t id = 0;
  std::string name;
  std::shared_ptr<const runtime::Model> model;
  int64_t batch1_exec_ns = 0;  // measured at load (best of a few runs)
};

class ModelSet {
 public:
  // Loads every configured model; the first failure is returned with the
  // model's name and path in the message.
  static Result<ModelSet> load(const std::vector<ModelConfig>& configs);

  std::size_t size() const { return models_.size(); }
  const LoadedModel* get(uint32_t id) const { return id < models_.size() ? &models_[id] : nullptr; }
  const LoadedModel* find(std::string_view name) const {
    for (const auto& m : models_) {
      if (m.name == name) return &m;
    }
    return nullptr;
  }
  const std::vector<LoadedModel>& all() const { return models_; }

  // The flatbuffer ModelTable published in the registry.
  std::vector<uint8_t> model_table() const;

 private:
  std::vector<LoadedModel> models_;
};

}  // namespace coproc::daemon
