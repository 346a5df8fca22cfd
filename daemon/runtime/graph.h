// The lowered graph: what an ONNX model becomes after load. Internal to the runtime.
//
// Invariants (established by the loader, relied on by the planner):
//  - nodes are in topological order: every input of node t is a graph input, a weight, or the
//    output of a node before t;
//  - every value is float32 (int64 constants are consumed at load, into Node::shape);
//  - every node has exactly one output value, and every computed value has exactly one producer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coproc/kernels/cpu.h"
#include "runtime/model.h"

namespace coproc::runtime::detail {

enum class OpKind : uint8_t {
  kGemm,
  kMatMul,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kRelu,
  kSigmoid,
  kTanh,
  kSoftmax,
  kIdentity,
  kFlatten,
  kReshape,
};
const char* op_name(OpKind op);

// Identity, Flatten and Reshape move no data: their output is the input's bytes with another
// shape.
inline bool is_view(OpKind op) {
  return op == OpKind::kIdentity || op == OpKind::kFlatten || op == OpKind::kReshape;
}

struct Value {
  enum class Kind : uint8_t { kInput, kWeight, kComputed };
  std::string name;
  Kind kind = Kind::kComputed;
  int32_t index = -1;  // kInput: graph input; kWeight: Graph::weights; kComputed: producing node
};

struct Weight {
  Shape shape;
  std::vector<float> data;  // empty when only packed copies are read (weight_packing.h)
};

// A Gemm or MatMul whose B is a weight, packed once at load (weight_packing.h).
struct PackedGemm {
  kernels::cpu::PackedB b;
  std::vector<float> bias;  // beta * C, when C is a weight of one row; otherwise empty
};

struct Node {
  OpKind op = OpKind::kIdentity;
  std::string name;             // the NodeProto's name, or "#<index>" when it has none
  std::vector<int32_t> inputs;  // value ids; -1 for an absent optional input (Gemm's C)
  int32_t output = -1;          // value id

  // Attributes; only those of `op` are meaningful.
  float alpha = 1.0f;  // Gemm
  float beta = 1.0f;   // Gemm
  bool trans_a = false;
  bool trans_b = false;
  int64_t axis = 0;            // Softmax, Flatten (not yet normalised: may be negative)
  bool softmax_as_2d = false;  // Softmax before opset 13: coerce to 2-D at axis
  std::vector<int64_t> shape;  // Reshape's target, read from its constant
  bool allowzero = false;      // Reshape
  int32_t packed = -1;         // Gemm, MatMul: B packed at load, in Graph::packed; -1: OpenBLAS
};

struct GraphInput {
  int32_t value = -1;
  std::vector<int64_t> dims;         // -1 where dynamic
  std::vector<std::string> symbols;  // the dim_param per dim, "" where fixed or unnamed
};

struct Graph {
  std::vector<Value> values;
  std::vector<Weight> weights;
  std::vector<Node> nodes;
  std::vector<GraphInput> inputs;
  std::vector<int32_t> outputs;  // value ids, in graph output order
  std::vector<PackedGemm> packed;
  std::size_t weight_bytes = 0;  // as the model declares them
};

}  // namespace coproc::runtime::detail
