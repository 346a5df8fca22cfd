// coproc-bench ort: coproc against ONNX Runtime on the same ONNX file, latency
// per batch size in one process or throughput of N client processes.
#pragma once

#include "common/command.h"

namespace coproc::bench {

Command add_ort_command(CLI::App& app);

}  // namespace coproc::bench
