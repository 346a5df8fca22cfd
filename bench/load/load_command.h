// coproc-bench load: many client processes against one daemon, closed loop or
// open loop (Poisson arrivals), with a priority mix and an optional heavy
// neighbour; latency percentiles per priority, queue and execution time, batch sizes.
#pragma once

#include "common/command.h"

namespace coproc::bench {

Command add_load_command(CLI::App& app);

}  // namespace coproc::bench
