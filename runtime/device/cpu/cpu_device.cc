// CpuDevice and CpuModel: the host as a Device (device.h).
#include <unistd.h>

#include <thread>

#include "device/cpu/cpu_session.h"
#include "ops/ops.h"

namespace coproc::runtime {

CpuDevice::CpuDevice() {
  info_.kind = DeviceKind::kCpu;
  info_.name = "cpu";
  info_.compute_units = std::thread::hardware_concurrency();
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_bytes = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_bytes > 0) {
    info_.memory_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_bytes);
  }
}

// Every operator has a host kernel (ops.h: the planner folds with it).
bool CpuDevice::supports(std::string_view op) const { return detail::find_op(op) != nullptr; }

Result<std::shared_ptr<const PlacedModel>> CpuDevice::place(std::shared_ptr<const Model> model) {
  COPROC_CHECK(model != nullptr);
  return std::shared_ptr<const PlacedModel>(
      std::make_shared<CpuModel>(std::move(model), shared_from_this()));
}

Result<std::shared_ptr<Device>> open_cpu_device(const DeviceOptions& /*options*/) {
  return std::shared_ptr<Device>(std::make_shared<CpuDevice>());
}

}  // namespace coproc::runtime
