// The CPU device: operators' host kernels (kernels/cpu) on host memory. Internal to the runtime;
// users open it through device.h (open_device(DeviceKind::kCpu)).
//
// CpuDevice: the host. Runs every operator the runtime has. One per process is enough, but any
// number may be open: it holds nothing.
//
// CpuModel: a Model on the CPU, which is the Model itself: its weights are read where they lie.
//
// CpuSession: the CPU's Session (model.h): the plan cache, one scratch arena, and the loop that
// runs a plan's kernel calls. Code that runs on the CPU alone may construct one directly.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "coproc/runtime/device.h"
#include "coproc/runtime/model.h"

namespace coproc::runtime {

class CpuDevice final : public Device {
 public:
  CpuDevice();
  const DeviceInfo& info() const override { return info_; }
  bool supports(std::string_view op) const override;
  Result<std::shared_ptr<const PlacedModel>> place(std::shared_ptr<const Model> model) override;

 private:
  DeviceInfo info_;
};

class CpuModel final : public PlacedModel {
 public:
  CpuModel(std::shared_ptr<const Model> model, std::shared_ptr<Device> device)
      : model_(std::move(model)), device_(std::move(device)) {}
  const Model& model() const override { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const override { return model_; }
  Device& device() const override { return *device_; }

 private:
  std::unique_ptr<Session> make_session(SessionLimits limits) const override;

  std::shared_ptr<const Model> model_;
  std::shared_ptr<Device> device_;
};

class CpuSession final : public Session {
 public:
  explicit CpuSession(std::shared_ptr<const Model> model, SessionLimits limits = {});
  ~CpuSession() override;

  const Model& model() const override { return *model_; }
  Status run(const Plan& plan, std::span<const void* const> inputs,
             std::span<void* const> outputs) override;

 private:
  Result<const Plan*> prepare_shapes(std::span<const Shape> input_shapes,
                                     std::span<const void* const> input_values) override;

  std::shared_ptr<const Model> model_;
  SessionLimits limits_;
  // One per distinct set of input shapes (per batch size, in practice), least recently used
  // first: a hit moves to the back, and the search starts there.
  std::vector<std::unique_ptr<Plan>> plans_;
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  std::unique_ptr<std::byte, FreeDeleter> scratch_;  // kScratchAlignment-aligned
  std::size_t scratch_capacity_bytes_ = 0;
  // One step's tensor pointers, sized for the largest step.
  std::vector<const void*> io_;
  std::vector<void*> out_;
};

// device/registry.cc's entry for DeviceKind::kCpu.
Result<std::shared_ptr<Device>> open_cpu_device(const DeviceOptions& options);

}  // namespace coproc::runtime
