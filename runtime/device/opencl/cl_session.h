// The OpenCL device (kernels/opencl) as a runtime Device (device.h). Internal to the runtime;
// users open it through device.h (open_device(DeviceKind::kOpenCl, options)).
//
// ClDevice: one opened device for the whole process, with the lock that makes its single queue
// usable from more than one thread (a kernels::opencl::Device is used by one thread at a time),
// and the binder that makes operators' DeviceCalls into its kernels (cl_kernels.h).
//
// ClModel: a Model's weights uploaded to a ClDevice once, shared by every ClSession on it. The
// model must be loaded with LoadOptions::keep_unpacked when weight packing is on: the device
// reads the weights' original layout.
//
// ClSession: the OpenCL device's Session. It uses the same Plans as the CPU's (the planner has
// this device bind their kernels) and the same memory plan, with the scratch arena, the inputs and
// the outputs in device buffers. run() takes host memory: it enqueues the inputs' upload, every
// kernel, the outputs' download, and waits once.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coproc/kernels/opencl.h"
#include "coproc/runtime/device.h"
#include "coproc/runtime/model.h"

namespace coproc::runtime {

namespace detail {
class Binder;
}

class ClDevice final : public Device {
 public:
  // Opens the device the selector names; the error says which and why not.
  static Result<std::shared_ptr<ClDevice>> open(const kernels::opencl::Selector& selector);
  explicit ClDevice(std::unique_ptr<kernels::opencl::Device> device);
  ~ClDevice() override;

  const DeviceInfo& info() const override { return info_; }
  // Every operator: each binds its work here at some shapes (a view needs no kernel; Shape and
  // Size always fold).
  bool supports(std::string_view op) const override;
  // ClModel::upload.
  Result<std::shared_ptr<const PlacedModel>> place(std::shared_ptr<const Model> model) override;

  kernels::opencl::Device& device() { return *device_; }
  // What OpenCL says of the device, beyond info(): its NUMA node, clock, indices.
  const kernels::opencl::DeviceInfo& cl_info() const { return device_->info(); }
  // Held for every prepare() and run() on the device.
  std::mutex& mutex() { return mu_; }
  // Used under mutex().
  const detail::Binder& binder() const { return *binder_; }

 private:
  std::unique_ptr<kernels::opencl::Device> device_;
  std::unique_ptr<detail::Binder> binder_;
  DeviceInfo info_;
  std::mutex mu_;
};

class ClModel final : public PlacedModel, public std::enable_shared_from_this<ClModel> {
 public:
  // Uploads every weight the model holds in its original layout.
  static Result<std::shared_ptr<const ClModel>> upload(std::shared_ptr<const Model> model,
                                                       std::shared_ptr<ClDevice> device);

  const Model& model() const override { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const override { return model_; }
  ClDevice& device() const override { return *device_; }
  // The device copy of host bytes inside one of the model's weights; Mem{} when `data` is not.
  kernels::opencl::Mem find(const std::byte* data) const;

 private:
  std::unique_ptr<Session> make_session(SessionLimits limits) const override;

  struct Upload {
    const std::byte* host = nullptr;
    std::size_t bytes = 0;
    kernels::opencl::Buffer buffer;
  };
  ClModel(std::shared_ptr<const Model> model, std::shared_ptr<ClDevice> device)
      : model_(std::move(model)), device_(std::move(device)) {}

  std::shared_ptr<const Model> model_;
  std::shared_ptr<ClDevice> device_;
  std::vector<Upload> weights_;  // sorted by host address
};

class ClSession final : public Session {
 public:
  explicit ClSession(std::shared_ptr<const ClModel> model, SessionLimits limits = {});
  ~ClSession() override;

  const Model& model() const override { return model_->model(); }

  // As Session::run; inputs and outputs are host memory. A Gather index out of range fails with
  // kInvalidArgument naming the node, as on the CPU; a device failure with kInternal.
  Status run(const Plan& plan, std::span<const void* const> inputs,
             std::span<void* const> outputs) override;
  // As Session::run_rows (the dispatcher's contract with the models it batches). A batch of at
  // least two rows whose transfers reach overlap_min_bytes runs as two halves on plans prepare()
  // made alongside: the second half uploads while the first computes, and the first downloads
  // while the second computes (Device::upload, compute_after, download_after).
  Status run_rows(const Plan& plan, std::span<const void* const> inputs,
                  std::span<void* const> outputs) override;
  // The transfers (inputs and outputs) from which run_rows splits a batch; tests set 0.
  void set_overlap_min_bytes(std::size_t bytes) { overlap_min_bytes_ = bytes; }
  // How many run_rows calls ran as two halves.
  uint64_t split_runs() const { return split_runs_; }
  static constexpr std::size_t kOverlapMinBytes = std::size_t{1} << 20;

  // Pinned host memory (mapped for the host, reached by the device's DMA): run() then moves no
  // byte through pageable memory.
  void* input_staging(std::size_t i) const override { return input_pins_[i].host; }
  void* output_staging(std::size_t j) const override { return output_pins_[j].host; }

 private:
  struct Prepared;
  // As Session::prepare, with the plan's kernels on the device; also uploads the constants the
  // plan folded and sizes the device buffers, so that run() allocates nothing.
  Result<const Plan*> prepare_shapes(std::span<const Shape> input_shapes,
                                     std::span<const void* const> input_values) override;
  // Where a run's inputs and outputs are on the device: the session's buffers, or a row range of
  // them for one half of a split batch.
  struct Bases {
    std::vector<kernels::opencl::Mem> inputs;
    std::vector<kernels::opencl::Mem> outputs;
  };
  Result<std::unique_ptr<Prepared>> prepare_plan(std::span<const Shape> input_shapes,
                                                 std::span<const void* const> input_values);
  Status enqueue_steps(const Prepared& prepared, const Bases& bases,
                       std::span<void* const> host_outputs);
  Status finish_run();
  Status run_halves(const Prepared& prepared, std::span<const void* const> inputs,
                    std::span<void* const> outputs);
  const Prepared& prepared_of(const Plan& plan) const;
  // Whether output j is a constant of the plan, written on the host: nothing to download.
  static bool constant_output(const Plan& plan, std::size_t j);
  struct Pinned {
    kernels::opencl::Buffer buffer;
    void* host = nullptr;
  };
  Status grow(std::vector<kernels::opencl::Buffer>* buffers, std::size_t count,
              std::span<const std::size_t> bytes);
  Status grow_pinned(std::vector<Pinned>* pins, std::size_t count,
                     std::span<const std::size_t> bytes);

  std::shared_ptr<const ClModel> model_;
  SessionLimits limits_;
  std::vector<std::unique_ptr<Prepared>> plans_;  // least recently used first
  kernels::opencl::Buffer scratch_;
  std::vector<kernels::opencl::Buffer> inputs_;
  std::vector<kernels::opencl::Buffer> outputs_;
  std::vector<Pinned> input_pins_;
  std::vector<Pinned> output_pins_;
  // Reused by every run, so that a run allocates nothing: where each half's (or the whole
  // run's, in [0]) inputs and outputs are, and its outputs' host addresses.
  Bases bases_[2];
  std::vector<void*> host_outputs_[2];
  std::size_t overlap_min_bytes_ = kOverlapMinBytes;
  uint64_t split_runs_ = 0;
  // One step's operands, and pointers to them for its KernelIO.
  std::vector<kernels::opencl::Mem> mems_;
  std::vector<const void*> in_ptrs_;
  std::vector<void*> out_ptrs_;
};

// device/registry.cc's entry for DeviceKind::kOpenCl.
Result<std::shared_ptr<Device>> open_cl_device(const DeviceOptions& options);

}  // namespace coproc::runtime
