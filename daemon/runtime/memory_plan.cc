#include "runtime/memory_plan.h"

#include <algorithm>
#include <climits>

namespace coproc::runtime::detail {
namespace {

// The last use of a graph output is after every node.
constexpr int kForever = INT_MAX;

struct Root {
  Ref ref;
  std::size_t bytes = 0;
  int first = -1;  // node that writes it first; -1 for inputs and weights
  int last = -1;   // last node that reads any value on it
  bool computed = false;
};

std::size_t bytes_of(const Shape& shape) {
  return static_cast<std::size_t>(shape.elements()) * sizeof(float);
}

std::size_t align_up(std::size_t bytes) {
  return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
}

// Elementwise ops may write over operand k when out[i] reads only operand k's element i, i.e.
// when operand k has the output's full shape (equal element counts imply equal dims here).
bool may_overwrite(const Node& node, int k, std::span<const Shape> shapes) {
  switch (node.op) {
    case OpKind::kRelu:
    case OpKind::kSigmoid:
    case OpKind::kTanh:
    case OpKind::kSoftmax:
      return k == 0;
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
      return shapes[static_cast<std::size_t>(node.inputs[static_cast<std::size_t>(k)])]
                 .elements() == shapes[static_cast<std::size_t>(node.output)].elements();
    default:
      return false;  // Gemm and MatMul read operands while writing the output
  }
}

// Offsets in the arena, largest root first; a root goes into the lowest gap that no root with an
// overlapping lifetime occupies.
std::size_t place_in_arena(std::vector<Root>& roots) {
  std::vector<std::size_t> order;
  for (std::size_t r = 0; r < roots.size(); ++r) {
    if (roots[r].computed && roots[r].ref.loc == Ref::Loc::kScratch && roots[r].bytes > 0) {
      order.push_back(r);
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return roots[a].bytes > roots[b].bytes; });
  std::vector<std::size_t> placed;
  std::vector<std::size_t> conflicts;
  std::size_t arena = 0;
  for (const std::size_t r : order) {
    const Root& root = roots[r];
    conflicts.clear();
    for (const std::size_t p : placed) {
      if (roots[p].first <= root.last && root.first <= roots[p].last) conflicts.push_back(p);
    }
    std::sort(conflicts.begin(), conflicts.end(), [&](std::size_t a, std::size_t b) {
      return roots[a].ref.offset < roots[b].ref.offset;
    });
    const std::size_t size = align_up(root.bytes);
    std::size_t offset = 0;
    for (const std::size_t c : conflicts) {
      if (offset + size <= roots[c].ref.offset) break;
      offset = std::max(offset, roots[c].ref.offset + align_up(roots[c].bytes));
    }
    roots[r].ref.offset = offset;
    arena = std::max(arena, offset + size);
    placed.push_back(r);
  }
  return arena;
}

}  // namespace

Storage plan_storage(const Graph& graph, std::span<const Shape> shapes) {
  const std::size_t num_values = graph.values.size();
  std::vector<int> last_use(num_values, -1);
  for (std::size_t t = 0; t < graph.nodes.size(); ++t) {
    for (const int32_t v : graph.nodes[t].inputs) {
      if (v >= 0) last_use[static_cast<std::size_t>(v)] = static_cast<int>(t);
    }
  }
  for (const int32_t v : graph.outputs) last_use[static_cast<std::size_t>(v)] = kForever;

  std::vector<Root> roots;
  std::vector<std::size_t> root_of(num_values, 0);
  for (std::size_t v = 0; v < num_values; ++v) {
    const Value& value = graph.values[v];
    if (value.kind == Value::Kind::kComputed) continue;
    Root root;
    root.bytes = bytes_of(shapes[v]);
    root.last = last_use[v];
    if (value.kind == Value::Kind::kInput) {
      root.ref.loc = Ref::Loc::kInput;
      root.ref.index = static_cast<uint32_t>(value.index);
    } else {
      root.ref.loc = Ref::Loc::kWeight;
      root.ref.weight = graph.weights[static_cast<std::size_t>(value.index)].data.data();
    }
    root_of[v] = roots.size();
    roots.push_back(root);
  }

  for (std::size_t t = 0; t < graph.nodes.size(); ++t) {
    const Node& node = graph.nodes[t];
    const auto out = static_cast<std::size_t>(node.output);
    const int now = static_cast<int>(t);
    std::size_t reuse = roots.size();
    if (is_view(node.op)) {
      reuse = root_of[static_cast<std::size_t>(node.inputs[0])];
    } else {
      for (std::size_t k = 0; k < node.inputs.size(); ++k) {
        if (node.inputs[k] < 0 || !may_overwrite(node, static_cast<int>(k), shapes)) continue;
        const std::size_t r = root_of[static_cast<std::size_t>(node.inputs[k])];
        if (roots[r].computed && roots[r].last == now) {
          reuse = r;
          break;
        }
      }
    }
    if (reuse == roots.size()) {
      Root root;
      root.bytes = bytes_of(shapes[out]);
      root.first = now;
      root.computed = true;
      roots.push_back(root);
    }
    root_of[out] = reuse;
    roots[reuse].last = std::max({roots[reuse].last, now, last_use[out]});
  }

  // The first graph output on a computed root makes that root the caller's output buffer.
  Storage storage;
  std::vector<std::pair<std::size_t, uint32_t>> copies;  // (root, output)
  std::vector<bool> bound(roots.size(), false);
  for (std::size_t j = 0; j < graph.outputs.size(); ++j) {
    const std::size_t r = root_of[static_cast<std::size_t>(graph.outputs[j])];
    if (roots[r].computed && !bound[r]) {
      roots[r].ref.loc = Ref::Loc::kOutput;
      roots[r].ref.index = static_cast<uint32_t>(j);
      bound[r] = true;
    } else {
      copies.emplace_back(r, static_cast<uint32_t>(j));
    }
  }

  storage.scratch_bytes = place_in_arena(roots);
  storage.refs.resize(num_values);
  for (std::size_t v = 0; v < num_values; ++v) storage.refs[v] = roots[root_of[v]].ref;
  for (const auto& [r, j] : copies)
    storage.copies.push_back(OutputCopy{roots[r].ref, j, roots[r].bytes});
  return storage;
}

}  // namespace coproc::runtime::detail
