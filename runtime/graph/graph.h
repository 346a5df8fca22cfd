// The lowered graph: what an ONNX model becomes after load. Internal to the runtime.
//
// Invariants (established by the loader and the load-time passes, relied on by the planner):
//  - nodes are in topological order: every input of node t is a graph input, a weight, or an
//    output of a node before t;
//  - every value has one dtype the runtime computes on (float32, int64, int32, bool);
//  - every computed value has exactly one producer; a node's absent optional outputs are -1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "coproc/kernels/cpu.h"
#include "coproc/runtime/model.h"

namespace coproc::runtime::detail {

struct OpDef;

// A tensor held by the runtime itself: a weight, a constant attribute, or a value folded at plan
// time. Data is dense row-major in the dtype's element size.
struct HostTensor {
  DType dtype = DType::kInvalid;
  Shape shape;
  std::vector<std::byte> bytes;

  template <class T>
  const T* as() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
  template <class T>
  T* as() {
    return reinterpret_cast<T*>(bytes.data());
  }
  int64_t elements() const { return shape.elements(); }
  // The values as int64 (int64, int32 and bool tensors); used for shape operands.
  std::vector<int64_t> to_ints() const;
  static HostTensor make(DType dtype, const Shape& shape);  // zero-filled
};

struct Attribute {
  enum class Kind : uint8_t { kInt, kFloat, kInts, kFloats, kString, kTensor, kOther };
  std::string name;
  Kind kind = Kind::kOther;
  int64_t i = 0;
  float f = 0.0f;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string s;
  HostTensor t;
};

struct Value {
  enum class Kind : uint8_t { kInput, kWeight, kComputed };
  std::string name;
  Kind kind = Kind::kComputed;
  int32_t index = -1;  // kInput: graph input; kWeight: Graph::weights; kComputed: producing node
  DType dtype = DType::kInvalid;
};

// A MatMul or Gemm whose B is a weight, packed once at load (weight_packing.h).
struct PackedGemm {
  kernels::cpu::PackedB b;
  std::vector<float> bias;  // beta * C, when C is a weight of one row; otherwise empty
};

struct Node {
  const OpDef* def = nullptr;
  std::string op;                // the ONNX op type, or a fused op's name ("coproc.Gelu", ...)
  std::string name;              // the NodeProto's name, or "#<index>" when it has none
  std::vector<int32_t> inputs;   // value ids; -1 for an absent optional input
  std::vector<int32_t> outputs;  // value ids; -1 for an absent optional output
  std::vector<Attribute> attributes;
  int64_t opset = 0;    // of the ONNX domain, for operators whose meaning changed
  int32_t packed = -1;  // Gemm, MatMul, coproc.MatMulBias: B packed at load, in Graph::packed
  bool fused = false;   // made by fuse_patterns from several nodes

  const Attribute* attribute(std::string_view attr_name) const;
  int64_t int_attr(std::string_view attr_name, int64_t fallback) const;
  float float_attr(std::string_view attr_name, float fallback) const;
  bool has_input(std::size_t k) const { return k < inputs.size() && inputs[k] >= 0; }
  bool has_output(std::size_t k) const { return k < outputs.size() && outputs[k] >= 0; }
};

struct GraphInput {
  int32_t value = -1;
  std::vector<int64_t> dims;         // -1 where dynamic
  std::vector<std::string> symbols;  // the dim_param per dim, "" where fixed or unnamed
};

struct Graph {
  std::vector<Value> values;
  std::vector<HostTensor> weights;
  std::vector<Node> nodes;
  std::vector<GraphInput> inputs;
  std::vector<int32_t> outputs;  // value ids, in graph output order
  std::vector<PackedGemm> packed;
  std::size_t weight_bytes = 0;  // as the model declares them
  // Graph inputs whose VALUES determine a shape (a Reshape's shape, a Slice's starts, ...):
  // plans for them are made per value (Session::prepare with input data).
  std::vector<int32_t> value_inputs;

  // Adds a computed value; returns its id.
  int32_t add_value(std::string name, DType dtype);
  int32_t add_weight(std::string name, HostTensor tensor);
};

}  // namespace coproc::runtime::detail
