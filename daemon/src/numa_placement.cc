#include "numa_placement.h"

#include <numa.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace coproc::daemon {

std::string Placement::describe() const { return fmt::format("node {} cpus [{}]", node, fmt::join(cpus, ",")); }

Result<Placement> apply_numa_placement(bool automatic, int requested_node, int gpu_node) {
  if (numa_available() < 0) {
    // The kernel has no NUMA support: the whole machine is one node.
    if (!automatic && requested_node != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("numa_node = {}: this system has no NUMA support (only node 0)",
                                    requested_node));
    }
    return Placement{0, {}};
  }
  int max_node = numa_max_node();
  // auto: the GPU's node when the system reports one that exists here, else node 0.
  const bool gpu_node_ok = gpu_node >= 0 && gpu_node <= max_node &&
                           numa_bitmask_isbitset(numa_all_nodes_ptr, gpu_node);
  int node = automatic ? (gpu_node_ok ? gpu_node : 0) : requested_node;
  if (node < 0 || node > max_node || !numa_bitmask_isbitset(numa_all_nodes_ptr, node)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("numa_node = {} does not exist on this machine (nodes 0..{})", node,
                                  max_node));
  }
  if (numa_run_on_node(node) != 0) {
    return make_error(ErrorCode::kInternal, fmt::format("numa_run_on_node({}) failed", node));
  }
  numa_set_preferred(node);
  Placement placement{node, {}};
  bitmask* cpus = numa_allocate_cpumask();
  if (numa_node_to_cpus(node, cpus) == 0) {
    for (unsigned i = 0; i < cpus->size; ++i) {
      if (numa_bitmask_isbitset(cpus, i)) placement.cpus.push_back(static_cast<int>(i));
    }
  }
  numa_free_cpumask(cpus);
  return placement;
}

}  // namespace coproc::daemon
