#include "coproc/runtime/model.h"

#include <fmt/format.h>

#include <new>

#include "graph/graph.h"
#include "graph/passes.h"
#include "graph/weight_packing.h"
#include "onnx/loader.h"

namespace coproc::runtime {

Model::Model(std::string path, std::unique_ptr<const detail::Graph> graph,
             std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs)
    : path_(std::move(path)),
      graph_(std::move(graph)),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)) {
  for (const int32_t v : graph_->value_inputs) {
    value_inputs_.push_back(
        static_cast<std::size_t>(graph_->values[static_cast<std::size_t>(v)].index));
  }
}

Model::~Model() = default;

Result<std::shared_ptr<const Model>> Model::load(const std::string& path,
                                                 const LoadOptions& options) {
  auto loaded = detail::load_onnx(path);
  if (!loaded) return loaded.error();
  detail::Graph* graph = loaded->graph.get();
  try {
    if (Status s = detail::fold_constants(graph); !s) {
      return make_error(s.error().code, fmt::format("model '{}': {}", path, s.error().message));
    }
    if (options.fuse) detail::fuse_patterns(graph);
    detail::remove_dead_nodes(graph);
    detail::mark_value_inputs(graph);
    if (options.pack_weights) detail::pack_gemm_weights(graph, options.keep_unpacked);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("model '{}': cannot allocate its weights", path));
  }
  return std::shared_ptr<const Model>(new Model(
      path, std::move(loaded->graph), std::move(loaded->inputs), std::move(loaded->outputs)));
}

std::size_t Model::weight_bytes() const { return graph_->weight_bytes; }
std::size_t Model::num_nodes() const { return graph_->nodes.size(); }
std::size_t Model::num_fused_nodes() const {
  std::size_t n = 0;
  for (const detail::Node& node : graph_->nodes) {
    n += node.fused || node.op.rfind("coproc.", 0) == 0 ? 1 : 0;
  }
  return n;
}

}  // namespace coproc::runtime
