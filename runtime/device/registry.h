// The devices open_device() (device.h) can open: one entry each. Internal to the runtime.
//
// Adding a device: a folder runtime/device/<name>/ with its Device, PlacedModel, Session and
// Binder (plan/plan.h: it binds the DeviceCalls of ops/device_call.h into its kernels); a
// DeviceKind for it (device.h); and one line in kDevices (registry.cc) naming its open function.
#pragma once

#include <memory>
#include <span>

#include "coproc/runtime/device.h"

namespace coproc::runtime::detail {

struct DeviceRegistration {
  DeviceKind kind;
  const char* name;  // device_kind_name()
  Result<std::shared_ptr<Device>> (*open)(const DeviceOptions& options);
};

std::span<const DeviceRegistration> registered_devices();

}  // namespace coproc::runtime::detail
