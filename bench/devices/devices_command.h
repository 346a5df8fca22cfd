// coproc-bench devices: the OpenCL device against the CPU (devices.h).
#pragma once

#include "common/command.h"

namespace coproc::bench {

Command add_devices_command(CLI::App& app);

}  // namespace coproc::bench
