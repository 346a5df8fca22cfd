// --numa-node N|auto: the daemon's threads, the OpenBLAS threads, the
// segments' pages and the weights all live on one node. Applied before any
// thread starts and before weights load, so everything inherits it. On a
// one-node machine this runs the same code with node 0.
#pragma once

#include <string>
#include <vector>

#include "coproc/base/result.h"

namespace coproc::daemon {

struct Placement {
  int node = 0;
  std::vector<int> cpus;
  std::string describe() const;
};

// The CPUs this thread may run on now (sched_getaffinity), after placement.
std::vector<int> allowed_cpus();
// CPUs as ranges: {0,1,2,3,8} -> "0-3,8".
std::string cpu_ranges(const std::vector<int>& cpus);

// The CPU's model name from /proc/cpuinfo ("AMD EPYC 7B13"); "cpu" when it does not say.
std::string cpu_model_name();

// automatic: gpu_node when it is a node of this machine (the OpenCL device's, from its PCI
// slot; -1 when no model uses it or the system does not say), else node 0.
Result<Placement> apply_numa_placement(bool automatic, int requested_node, int gpu_node = -1);

}  // namespace coproc::daemon
