// ONNX file -> lowered Graph. Internal to the runtime; Model::load is the public entry point.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coproc/base/result.h"
#include "coproc/runtime/model.h"
#include "graph/graph.h"

namespace coproc::runtime::detail {

struct LoadedModel {
  std::unique_ptr<Graph> graph;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// Parses the file as an onnx::ModelProto, runs onnx::checker::check_model, refuses operators
// outside our set (naming all of them), runs strict ONNX shape inference, then lowers the graph:
// weights are read into memory here, once. Graph inputs that are also initializers are treated
// as weights, not as inputs.
Result<LoadedModel> load_onnx(const std::string& path);

}  // namespace coproc::runtime::detail
