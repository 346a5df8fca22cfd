#include "graph/passes.h"

#include <fmt/format.h>

#include <algorithm>

#include "ops/ops.h"
#include "plan/plan.h"

namespace coproc::runtime::detail {

Status fold_constants(Graph* graph) {
  std::vector<Node> kept;
  std::vector<TensorInfo> in, out;
  for (Node& node : graph->nodes) {
    in.clear();
    bool known = !node.inputs.empty() && !node.def->shapes_only;
    int64_t in_elements = 0;
    for (const int32_t v : node.inputs) {
      if (v < 0) {
        in.emplace_back();
        continue;
      }
      const Value& value = graph->values[static_cast<std::size_t>(v)];
      if (value.kind != Value::Kind::kWeight) {
        known = false;
        break;
      }
      const HostTensor& w = graph->weights[static_cast<std::size_t>(value.index)];
      in.push_back({w.dtype, w.shape, &w});
      in_elements += w.elements();
    }
    if (!known) {
      kept.push_back(std::move(node));
      continue;
    }
    KernelChoice choice;
    // Folding runs the host kernel: nothing to describe for a device.
    if (Status s = plan_node(*graph, node, in, &out, &choice, /*describe=*/false); !s) return s;
    int64_t out_elements = 0;
    for (std::size_t o = 0; o < out.size(); ++o) {
      if (node.outputs[o] >= 0) out_elements += out[o].shape.elements();
    }
    if (out_elements > std::max(kFoldElementLimit, in_elements)) {
      kept.push_back(std::move(node));
      continue;
    }
    auto values = run_on_host(node, choice.host.get(), in, out);
    if (!values) return values.error();
    for (std::size_t o = 0; o < out.size(); ++o) {
      const int32_t v = node.outputs[o];
      if (v < 0) continue;
      Value& value = graph->values[static_cast<std::size_t>(v)];
      value.kind = Value::Kind::kWeight;
      value.dtype = out[o].dtype;
      value.index = static_cast<int32_t>(graph->weights.size());
      graph->weights.push_back(std::move((*values)[o]));
    }
  }
  graph->nodes = std::move(kept);
  // Computed values name their producer by index: renumber.
  for (std::size_t n = 0; n < graph->nodes.size(); ++n) {
    for (const int32_t v : graph->nodes[n].outputs) {
      if (v >= 0) graph->values[static_cast<std::size_t>(v)].index = static_cast<int32_t>(n);
    }
  }
  return {};
}

void remove_dead_nodes(Graph* graph) {
  std::vector<int> readers(graph->values.size(), 0);
  for (const Node& node : graph->nodes) {
    for (const int32_t v : node.inputs) {
      if (v >= 0) ++readers[static_cast<std::size_t>(v)];
    }
  }
  for (const int32_t v : graph->outputs) ++readers[static_cast<std::size_t>(v)];
  std::vector<bool> dead(graph->nodes.size(), false);
  // Backwards, so a chain of dead nodes goes in one pass.
  for (std::size_t n = graph->nodes.size(); n-- > 0;) {
    const Node& node = graph->nodes[n];
    const bool used = std::any_of(node.outputs.begin(), node.outputs.end(), [&](int32_t v) {
      return v >= 0 && readers[static_cast<std::size_t>(v)] > 0;
    });
    if (used) continue;
    dead[n] = true;
    for (const int32_t v : node.inputs) {
      if (v >= 0) --readers[static_cast<std::size_t>(v)];
    }
  }
  std::vector<Node> kept;
  for (std::size_t n = 0; n < graph->nodes.size(); ++n) {
    if (!dead[n]) kept.push_back(std::move(graph->nodes[n]));
  }
  graph->nodes = std::move(kept);
  for (std::size_t n = 0; n < graph->nodes.size(); ++n) {
    for (const int32_t v : graph->nodes[n].outputs) {
      if (v >= 0) graph->values[static_cast<std::size_t>(v)].index = static_cast<int32_t>(n);
    }
  }
  for (std::size_t v = 0; v < graph->values.size(); ++v) {
    const Value& value = graph->values[v];
    if (value.kind == Value::Kind::kWeight && readers[v] == 0) {
      HostTensor& w = graph->weights[static_cast<std::size_t>(value.index)];
      w.bytes.clear();
      w.bytes.shrink_to_fit();
    }
  }
}

void mark_value_inputs(Graph* graph) {
  std::vector<bool> seen(graph->values.size(), false);
  std::vector<int32_t> stack;
  for (const Node& node : graph->nodes) {
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      if ((node.def->value_operands >> k & 1u) != 0 && node.inputs[k] >= 0) {
        stack.push_back(node.inputs[k]);
      }
    }
  }
  while (!stack.empty()) {
    const int32_t v = stack.back();
    stack.pop_back();
    if (seen[static_cast<std::size_t>(v)]) continue;
    seen[static_cast<std::size_t>(v)] = true;
    const Value& value = graph->values[static_cast<std::size_t>(v)];
    if (value.kind == Value::Kind::kInput) {
      graph->value_inputs.push_back(v);
      continue;
    }
    if (value.kind != Value::Kind::kComputed) continue;
    const Node& producer = graph->nodes[static_cast<std::size_t>(value.index)];
    if (producer.def->shapes_only) continue;
    for (const int32_t in : producer.inputs) {
      if (in >= 0) stack.push_back(in);
    }
  }
  std::sort(graph->value_inputs.begin(), graph->value_inputs.end(), [&](int32_t a, int32_t b) {
    return graph->values[static_cast<std::size_t>(a)].index <
           graph->values[static_cast<std::size_t>(b)].index;
  });
}

}  // namespace coproc::runtime::detail
