// A Session on the CPU device, where coprocd runs its CPU models: what the in-process baselines
// (`compare`'s in_process row, `ort`'s coproc side) run, through the runtime's public interface.
#pragma once

#include <memory>

#include "coproc/runtime/device.h"

namespace coproc::bench {

// The CPU device always opens and places (device.h), so this never fails.
inline std::unique_ptr<runtime::Session> cpu_session(std::shared_ptr<const runtime::Model> model) {
  auto cpu = runtime::open_device(runtime::DeviceKind::kCpu);
  auto placed = cpu.value()->place(std::move(model));
  return placed.value()->open_session();
}

}  // namespace coproc::bench
