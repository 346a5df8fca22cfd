// Where every tensor of a plan lives. Internal to the runtime.
//
// Tensors are grouped into storage roots: a view (Identity, Flatten, Reshape, ...) shares its
// input's root, and an elementwise op writes over an input whose root dies at that op (in place).
// Then:
//  - inputs are the caller's buffers and known values (weights, folded values) are constants;
//  - a computed root holding a graph output is the caller's output buffer itself, so the op that
//    makes it writes there directly; a second output on the same root, or an output that is an
//    input or a constant, becomes an OutputCopy;
//  - the other computed roots share one scratch arena: roots whose lifetimes (first writer to last
//    reader, in step order) overlap get disjoint byte ranges, placed greedily largest first. The
//    arena's size is the plan's peak activation memory.
#pragma once

#include <span>
#include <vector>

#include "graph/graph.h"
#include "ops/ops.h"
#include "plan/plan.h"

namespace coproc::runtime::detail {

struct Storage {
  std::vector<Ref> refs;  // per value of the graph
  std::vector<OutputCopy> copies;
  std::size_t scratch_bytes = 0;
};

// infos: every value's dtype, shape and (when known) value; executed: the nodes that run, in
// order (views included; folded nodes not).
Storage plan_storage(const Graph& graph, std::span<const TensorInfo> infos,
                     std::span<const int32_t> executed);

std::size_t tensor_bytes(const TensorInfo& info);

}  // namespace coproc::runtime::detail
