#include "graph/weight_packing.h"

#include <cstddef>
#include <vector>

namespace coproc::runtime::detail {
namespace {

namespace cpu = kernels::cpu;

// The weight a node input reads, or nullptr when it reads something else (or nothing).
const Value* weight_value(const Graph& graph, const Node& node, std::size_t input) {
  if (input >= node.inputs.size() || node.inputs[input] < 0) return nullptr;
  const Value& value = graph.values[static_cast<std::size_t>(node.inputs[input])];
  return value.kind == Value::Kind::kWeight ? &value : nullptr;
}

bool is_row_of(const Shape& shape, int64_t n) {
  return (shape.rank == 1 && shape.dims[0] == n) ||
         (shape.rank == 2 && shape.dims[0] == 1 && shape.dims[1] == n);
}

}  // namespace

void pack_gemm_weights(Graph* graph, bool keep_unpacked) {
  // Per weight: reads that still need its data in its original layout, and whether it was packed.
  std::vector<int> reads(graph->weights.size(), 0);
  std::vector<bool> packed(graph->weights.size(), false);
  const auto count_read = [&](int32_t value_id) {
    const Value& value = graph->values[static_cast<std::size_t>(value_id)];
    if (value.kind == Value::Kind::kWeight) ++reads[static_cast<std::size_t>(value.index)];
  };
  for (const Node& node : graph->nodes) {
    for (const int32_t v : node.inputs) {
      if (v >= 0) count_read(v);
    }
  }
  for (const int32_t v : graph->outputs) count_read(v);
  const auto absorb = [&](const Value& value) {
    const auto w = static_cast<std::size_t>(value.index);
    --reads[w];
    packed[w] = true;
  };

  for (Node& node : graph->nodes) {
    const bool is_gemm = node.op == "Gemm";
    if (!is_gemm && node.op != "MatMul" && node.op != "coproc.MatMulBias") continue;
    // gemm_packed reads A row-major in place: a transposed A stays on OpenBLAS.
    if (is_gemm && node.int_attr("transA", 0) != 0) continue;
    const Value* b = weight_value(*graph, node, 1);
    if (b == nullptr) continue;
    const HostTensor& weight = graph->weights[static_cast<std::size_t>(b->index)];
    if (weight.shape.rank != 2 || weight.dtype != DType::kFloat32) continue;
    const bool trans_b = is_gemm && node.int_attr("transB", 0) != 0;
    const int64_t k = weight.shape.dims[trans_b ? 1 : 0];
    const int64_t n = weight.shape.dims[trans_b ? 0 : 1];
    PackedGemm gemm{cpu::PackedB::pack(weight.as<float>(), k, n, trans_b), {}};
    absorb(*b);
    const float beta = node.float_attr("beta", 1.0f);
    if (is_gemm && beta != 0.0f) {
      const Value* c = weight_value(*graph, node, 2);
      if (c != nullptr) {
        const HostTensor& bias = graph->weights[static_cast<std::size_t>(c->index)];
        if (bias.dtype == DType::kFloat32 && is_row_of(bias.shape, n)) {
          const float* data = bias.as<float>();
          for (int64_t j = 0; j < bias.elements(); ++j) gemm.bias.push_back(beta * data[j]);
          absorb(*c);
        }
      }
    }
    node.packed = static_cast<int32_t>(graph->packed.size());
    graph->packed.push_back(std::move(gemm));
  }

  for (std::size_t w = 0; w < graph->weights.size(); ++w) {
    if (packed[w] && reads[w] == 0 && !keep_unpacked) {
      graph->weights[w].bytes.clear();
      graph->weights[w].bytes.shrink_to_fit();
    }
  }
}

}  // namespace coproc::runtime::detail
