// Reading constant tensors out of ONNX protobufs: initializers and Constant nodes' attributes.
// Internal to the runtime's loader.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/model.h"

namespace coproc::runtime::detail {

// A constant as read from the model: float32 data, or int64 data (only ever a Reshape shape).
struct Constant {
  DType dtype = DType::kInvalid;
  Shape shape;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

// Reads a float32 or int64 TensorProto (raw_data or the typed field). Other dtypes and external
// data are kUnsupported; inconsistent sizes are kBadModel. `what` names the tensor in messages.
Result<Constant> read_tensor(const onnx::TensorProto& tensor, const std::string& what);

// Reads the value of a Constant node: `value` (a tensor), `value_float(s)` or `value_int(s)`.
Result<Constant> read_constant_node(const onnx::NodeProto& node, const std::string& what);

// The DType of an ONNX TensorProto.DataType; kInvalid for those the wire schema lacks.
DType dtype_from_onnx(int32_t elem_type);

}  // namespace coproc::runtime::detail
