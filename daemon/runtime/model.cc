#include "runtime/model.h"

#include "runtime/graph.h"
#include "runtime/onnx_loader.h"

namespace coproc::runtime {

Model::Model(std::string path, std::unique_ptr<const detail::Graph> graph,
             std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs)
    : path_(std::move(path)),
      graph_(std::move(graph)),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)) {}

Model::~Model() = default;

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  auto loaded = detail::load_onnx(path);
  if (!loaded) return loaded.error();
  return std::shared_ptr<const Model>(new Model(
      path, std::move(loaded->graph), std::move(loaded->inputs), std::move(loaded->outputs)));
}

std::size_t Model::weight_bytes() const { return graph_->weight_bytes; }

}  // namespace coproc::runtime
