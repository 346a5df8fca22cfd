#include "platform/numa_placement.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <numa.h>
#include <sched.h>

#include <fstream>

namespace coproc::daemon {

std::string Placement::describe() const {
  return fmt::format("node {} cpus [{}]", node, fmt::join(cpus, ","));
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

std::string cpu_ranges(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    out += fmt::format("{}{}", out.empty() ? "" : ",", cpus[i]);
    if (j > i) out += fmt::format("-{}", cpus[j]);
    i = j + 1;
  }
  return out;
}

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  const std::string key = "model name";
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.compare(0, key.size(), key) != 0) continue;
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
  }
  return "cpu";
}

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
  const bool gpu_node_ok =
      gpu_node >= 0 && gpu_node <= max_node && numa_bitmask_isbitset(numa_all_nodes_ptr, gpu_node);
  int node = automatic ? (gpu_node_ok ? gpu_node : 0) : requested_node;
  if (node < 0 || node > max_node || !numa_bitmask_isbitset(numa_all_nodes_ptr, node)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("numa_node = {} does not exist on this machine (nodes 0..{})", node, max_node));
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
