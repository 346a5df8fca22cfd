// Checks that stand between a model file and ONNX's own shape inference.
//
// ONNX 1.12's inference functions trust parts of what a model says, and the loader runs them
// before it reads any tensor itself: a hostile file could crash or exhaust the daemon inside
// libonnx. fuzz_model found four such inputs (tests/fuzz/regressions/model/). Everything here
// runs first and refuses those models with a message instead.
#pragma once

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <string>

namespace coproc::runtime::detail {

// The schema registry the loader hands to InferShapes: ONNX's own schemas, where an inference
// function needs it wrapped in a guard that refuses (fail_shape_inference, so the model is
// refused as failing shape inference) the inputs that function does not check:
//   - Gemm with A or B not 2-D (Gemm-6 reads dim 1 of a rank-1 A);
//   - LayerNormalization with an axis outside [-rank, rank) (its Mean and InvStdDev outputs are
//     shaped from dims[axis + rank] without a bounds check);
//   - ConstantOfShape, Expand or Reshape whose shape operand has more than kMaxRank elements
//     (inference builds one dim per element: an operand declared as int64[2^40] took 2^40).
// Thread-safe; lives for the whole process.
const onnx::ISchemaRegistry* guarded_schemas();

// Every tensor stored in the graph (initializers, and tensor attributes such as Constant's
// value) must hold exactly the data its dims describe, in raw_data or in its typed field: shape
// inference copies raw_data into a vector sized raw_data.size() / element size and trusts it
// (a 5-byte int64 raw_data wrote past a null vector). Returns "" or the problem, naming the
// tensor.
std::string check_stored_tensors(const onnx::ModelProto& model);

}  // namespace coproc::runtime::detail
