// The registered devices, and open_device() over them.
#include "device/registry.h"

#include <fmt/format.h>

#include "device/cpu/cpu_session.h"
#include "device/opencl/cl_session.h"

namespace coproc::runtime {
namespace detail {

namespace {

constexpr DeviceRegistration kDevices[] = {
    {DeviceKind::kCpu, "cpu", open_cpu_device},
    {DeviceKind::kOpenCl, "opencl", open_cl_device},
};

}  // namespace

std::span<const DeviceRegistration> registered_devices() { return kDevices; }

}  // namespace detail

const char* device_kind_name(DeviceKind kind) {
  for (const detail::DeviceRegistration& d : detail::registered_devices()) {
    if (d.kind == kind) return d.name;
  }
  return "unknown";
}

Result<std::shared_ptr<Device>> open_device(DeviceKind kind, const DeviceOptions& options) {
  for (const detail::DeviceRegistration& d : detail::registered_devices()) {
    if (d.kind == kind) return d.open(options);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("no device of kind {} is built in", static_cast<int>(kind)));
}

}  // namespace coproc::runtime
