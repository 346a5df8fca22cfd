// Reading constant tensors out of ONNX protobufs: initializers, Constant nodes' attributes and
// tensor attributes (ConstantOfShape's value). Internal to the runtime's loader.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "coproc/base/result.h"
#include "graph/graph.h"

namespace coproc::runtime::detail {

// Reads a float32, int64, int32 or bool TensorProto (raw_data or the typed field). Other dtypes
// and external data are kUnsupported; inconsistent sizes are kBadModel. `what` names the tensor in
// messages.
Result<HostTensor> read_tensor(const onnx::TensorProto& tensor, const std::string& what);

// Reads the value of a Constant node: `value` (a tensor), `value_float(s)` or `value_int(s)`.
Result<HostTensor> read_constant_node(const onnx::NodeProto& node, const std::string& what);

// The DType of an ONNX TensorProto.DataType; kInvalid for those the wire schema lacks.
DType dtype_from_onnx(int32_t elem_type);

// True for the dtypes the runtime computes on: float32, int64, int32, bool.
bool computable(DType dtype);

}  // namespace coproc::runtime::detail
