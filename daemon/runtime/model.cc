#include "runtime/model.h"

#include <fmt/format.h>

#include <new>

#include "runtime/graph.h"
#include "runtime/onnx_loader.h"
#include "runtime/weight_packing.h"

namespace coproc::runtime {

Model::Model(std::string path, std::unique_ptr<const detail::Graph> graph,
             std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs)
    : path_(std::move(path)),
      graph_(std::move(graph)),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)) {}

Model::~Model() = default;

Result<std::shared_ptr<const Model>> Model::load(const std::string& path,
                                                 const LoadOptions& options) {
  auto loaded = detail::load_onnx(path);
  if (!loaded) return loaded.error();
  if (options.pack_weights) {
    try {
      detail::pack_gemm_weights(loaded->graph.get());
    } catch (const std::bad_alloc&) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("model '{}': cannot allocate its packed weights", path));
    }
  }
  return std::shared_ptr<const Model>(new Model(
      path, std::move(loaded->graph), std::move(loaded->inputs), std::move(loaded->outputs)));
}

std::size_t Model::weight_bytes() const { return graph_->weight_bytes; }

}  // namespace coproc::runtime
