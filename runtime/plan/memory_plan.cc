#include "plan/memory_plan.h"

#include <algorithm>
#include <climits>

namespace coproc::runtime::detail {
namespace {

// The last use of a graph output is after every step.
constexpr int kForever = INT_MAX;

struct Root {
  Ref ref;
  std::size_t bytes = 0;
  int first = -1;  // step that writes it first; -1 for inputs and constants
  int last = -1;   // last step that reads any value on it
  bool computed = false;
};

std::size_t align_up(std::size_t bytes) {
  return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
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

std::size_t tensor_bytes(const TensorInfo& info) {
  return static_cast<std::size_t>(info.shape.elements()) * dtype_bytes(info.dtype);
}

Storage plan_storage(const Graph& graph, std::span<const TensorInfo> infos,
                     std::span<const int32_t> executed) {
  const std::size_t num_values = graph.values.size();
  std::vector<int> last_use(num_values, -1);
  for (std::size_t t = 0; t < executed.size(); ++t) {
    for (const int32_t v : graph.nodes[static_cast<std::size_t>(executed[t])].inputs) {
      if (v >= 0) last_use[static_cast<std::size_t>(v)] = static_cast<int>(t);
    }
  }
  for (const int32_t v : graph.outputs) last_use[static_cast<std::size_t>(v)] = kForever;

  std::vector<Root> roots;
  std::vector<std::size_t> root_of(num_values, SIZE_MAX);
  for (std::size_t v = 0; v < num_values; ++v) {
    const Value& value = graph.values[v];
    const TensorInfo& info = infos[v];
    if (value.kind == Value::Kind::kComputed && info.value == nullptr) continue;
    Root root;
    root.bytes = tensor_bytes(info);
    root.last = last_use[v];
    if (value.kind == Value::Kind::kInput && info.value == nullptr) {
      root.ref.loc = Ref::Loc::kInput;
      root.ref.index = static_cast<uint32_t>(value.index);
    } else if (info.value != nullptr) {
      root.ref.loc = Ref::Loc::kConst;
      root.ref.data = info.value->bytes.data();
    }
    root_of[v] = roots.size();
    roots.push_back(root);
  }

  for (std::size_t t = 0; t < executed.size(); ++t) {
    const Node& node = graph.nodes[static_cast<std::size_t>(executed[t])];
    const int now = static_cast<int>(t);
    for (std::size_t o = 0; o < node.outputs.size(); ++o) {
      const int32_t out_id = node.outputs[o];
      if (out_id < 0) continue;
      const auto out = static_cast<std::size_t>(out_id);
      std::size_t reuse = roots.size();
      if (o == 0 && node.def->aliasing == Aliasing::kView) {
        reuse = root_of[static_cast<std::size_t>(node.inputs[0])];
      } else if (o == 0 && node.def->aliasing == Aliasing::kElementwise) {
        for (const int32_t in : node.inputs) {
          if (in < 0) continue;
          const auto i = static_cast<std::size_t>(in);
          const std::size_t r = root_of[i];
          // In place only over an operand of the output's full shape and element size, whose
          // storage nothing reads after this step.
          if (roots[r].computed && roots[r].last == now && infos[i].shape == infos[out].shape &&
              dtype_bytes(infos[i].dtype) == dtype_bytes(infos[out].dtype)) {
            reuse = r;
            break;
          }
        }
      }
      if (reuse == roots.size()) {
        Root root;
        root.bytes = tensor_bytes(infos[out]);
        root.first = now;
        root.computed = true;
        roots.push_back(root);
      }
      root_of[out] = reuse;
      roots[reuse].last = std::max({roots[reuse].last, now, last_use[out]});
    }
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
  for (std::size_t v = 0; v < num_values; ++v) {
    if (root_of[v] != SIZE_MAX) storage.refs[v] = roots[root_of[v]].ref;
  }
  for (const auto& [r, j] : copies) {
    const std::size_t bytes = tensor_bytes(infos[static_cast<std::size_t>(graph.outputs[j])]);
    storage.copies.push_back(OutputCopy{roots[r].ref, j, bytes});
  }
  return storage;
}

}  // namespace coproc::runtime::detail
