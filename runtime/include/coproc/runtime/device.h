// Devices: where a Model runs (DESIGN.md section 6). One interface, one implementation per device
// (runtime/device/<name>/), in the spirit of ggml's backends:
//
//  - Device: one opened device (the CPU, an OpenCL device). It says what it is (info()) and which
//    operators it runs (supports()), and places models on itself. Shared by every thread that uses
//    it; a device whose hardware takes one thing at a time serialises its users itself.
//  - PlacedModel: a Model on one device: its weights where the device reads them (for the OpenCL
//    device, uploaded once; for the CPU, the Model itself). Immutable; shared by every Session the
//    device opens for it, and it keeps the device open.
//  - Session (model.h): one thread's plans and scratch on that device, from open_session().
//
// A model's operators check their attributes and shapes once, whatever the device; then each
// device binds the work they chose into kernels of its own, or refuses it at prepare() with
// kUnsupported naming the node. Run results agree across devices within each operator's
// tolerance (tests/unit/runtime/device/opencl/cross_device_test.cc).
//
// This header names no device API: a user picks a device by kind and options.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "coproc/base/result.h"
#include "coproc/runtime/model.h"

namespace coproc::runtime {

enum class DeviceKind : uint8_t {
  kCpu,     // the host: always there, OpenBLAS and our kernels (kernels/cpu)
  kOpenCl,  // an OpenCL device (kernels/opencl): a GPU, or PoCL on the host in CI
};
const char* device_kind_name(DeviceKind kind);  // "cpu", "opencl"

struct DeviceInfo {
  DeviceKind kind = DeviceKind::kCpu;
  std::string name;      // the device's own name ("cpu" for the host)
  std::string platform;  // the driver's platform ("" for the host)
  std::string version;   // the driver's version string ("" for the host)
  uint32_t compute_units = 0;
  uint64_t memory_bytes = 0;  // the device's own memory (the host's physical memory for the CPU)
};

// Which device of a kind to open. Names match as case-insensitive substrings; an index of -1 and
// an empty name match anything; with nothing set, the first device. The CPU ignores them.
struct DeviceOptions {
  std::string platform;
  std::string device;
  int platform_index = -1;
  int device_index = -1;
};

class Device;

class PlacedModel {
 public:
  virtual ~PlacedModel() = default;
  PlacedModel(const PlacedModel&) = delete;
  PlacedModel& operator=(const PlacedModel&) = delete;

  virtual const Model& model() const = 0;
  virtual const std::shared_ptr<const Model>& model_ptr() const = 0;
  virtual Device& device() const = 0;

  // A Session for one thread. Its memory comes at prepare(), sized to the plans it makes.
  std::unique_ptr<Session> open_session(SessionLimits limits = {}) const {
    return make_session(limits);
  }

 protected:
  PlacedModel() = default;

 private:
  virtual std::unique_ptr<Session> make_session(SessionLimits limits) const = 0;
};

// Held by shared_ptr (open_device): a PlacedModel holds its device.
class Device : public std::enable_shared_from_this<Device> {
 public:
  virtual ~Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  virtual const DeviceInfo& info() const = 0;
  // Whether the device runs operator `op` (an ONNX op type, or a fused op of ours) at some
  // shapes; prepare() still refuses shapes or attributes it does not run, naming the node.
  virtual bool supports(std::string_view op) const = 0;
  // Puts the model's weights where the device reads them. The OpenCL device needs the model
  // loaded with LoadOptions::keep_unpacked when weight packing is on. kResourceExhausted when the
  // device has no room; kInternal when it fails.
  virtual Result<std::shared_ptr<const PlacedModel>> place(std::shared_ptr<const Model> model) = 0;

 protected:
  Device() = default;
};

// Opens a device of `kind` (device/registry.cc lists them). The CPU always opens; another kind
// fails with kUnavailable saying which device was asked for and why none opened.
Result<std::shared_ptr<Device>> open_device(DeviceKind kind, const DeviceOptions& options = {});

}  // namespace coproc::runtime
