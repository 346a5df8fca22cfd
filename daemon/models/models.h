// The models the daemon serves: loaded once at start, shared read-only by
// every client and thread. Each gets an id (its index in the registry's model
// table) and a measured batch-1 execution time, which decides whether its
// requests run inline on the poller or go to the executor thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "coproc/runtime/device.h"
#include "coproc/runtime/model.h"
#include "coproc/segment.h"

namespace coproc::daemon {

// What a model does with a request, which decides the executor that runs it. Every model
// served today is an ONNX graph run on batches of rows (fb::RequestKind::Infer); generation
// (RequestKind::Generate, runtime/llm) is the next kind.
enum class ModelKind : uint8_t { kInfer };

// The stats page's spelling of a model's device (segment.h DeviceMode).
constexpr wire::DeviceMode to_wire(DeviceMode device) {
  switch (device) {
    case DeviceMode::kCpu:
      return wire::DeviceMode::kCpu;
    case DeviceMode::kGpu:
      return wire::DeviceMode::kGpu;
    case DeviceMode::kAuto:
      return wire::DeviceMode::kAuto;
  }
  return wire::DeviceMode::kCpu;
}

// An input or output spec whose dim 1 is the variable-length dim (dynamic, after the batch dim):
// requests may differ there, and are padded along it in a batch.
inline bool variable_length_dim(const std::vector<int64_t>& dims) {
  return dims.size() >= 2 && dims[1] < 0;
}

// One batch size's run times on both devices, measured at load for device auto.
struct DeviceTiming {
  uint32_t batch = 0;
  int64_t cpu_ns = 0;
  int64_t gpu_ns = 0;
};

struct LoadedModel {
  uint32_t id = 0;
  std::string name;
  ModelKind kind = ModelKind::kInfer;
  std::shared_ptr<const runtime::Model> model;
  int64_t batch1_exec_ns = 0;            // on the CPU, measured at load (best of a few runs)
  DeviceMode device = DeviceMode::kCpu;  // as configured
  uint32_t max_batch = 0;                // batching.max_batch as configured at start (model table)
  // The variable-length dim is dim 1 of an input whose dim 1 is dynamic (a sequence); this is
  // the first such input, whose dim 1 is a request's length (length buckets, padding); -1:
  // the model has none.
  int length_input = -1;
  // The model on the CPU device: every model has it.
  std::shared_ptr<const runtime::PlacedModel> cpu;
  // The model on the OpenCL device (gpu and auto, when there is a device), else null.
  std::shared_ptr<const runtime::PlacedModel> gpu;
  // Batches of at least this many rows run on the OpenCL device; 0: none do.
  uint32_t gpu_from_batch = 0;
  std::vector<DeviceTiming> timings;  // auto: batch sizes 1, 2, 4, ... max_batch

  bool on_gpu(int64_t rows) const {
    return gpu != nullptr && gpu_from_batch != 0 && rows >= int64_t{gpu_from_batch};
  }
  bool variable_length() const { return length_input >= 0; }
};

// The NUMA node of the OpenCL device the config selects, when a model runs on gpu or auto and
// the system reports the node; -1 otherwise. Opens nothing.
int gpu_numa_node(const Config& config);

class ModelSet {
 public:
  // Loads every configured model; the first failure is returned with the
  // model's name and path in the message. Models on gpu or auto get the
  // OpenCL device config names (opened once, on first need); auto models are
  // timed on both devices here.
  static Result<ModelSet> load(const Config& config);

  std::size_t size() const { return models_.size(); }
  const LoadedModel* get(uint32_t id) const { return id < models_.size() ? &models_[id] : nullptr; }
  const LoadedModel* find(std::string_view name) const {
    for (const auto& m : models_) {
      if (m.name == name) return &m;
    }
    return nullptr;
  }
  const std::vector<LoadedModel>& all() const { return models_; }
  // The OpenCL device, when a model uses one.
  const std::shared_ptr<runtime::Device>& gpu_device() const { return gpu_device_; }

  // The flatbuffer ModelTable published in the registry.
  std::vector<uint8_t> model_table() const;

 private:
  std::vector<LoadedModel> models_;
  std::shared_ptr<runtime::Device> cpu_device_;
  std::shared_ptr<runtime::Device> gpu_device_;
};

}  // namespace coproc::daemon
