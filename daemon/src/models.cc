#include "models.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "coproc/coproc_generated.h"
#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {

constexpr int kCostProbeRuns = 5;

// Runs the model at batch 1 (every dynamic dim set to 1) on zeroed inputs
// and returns the best of a few runs: the cost used for inline dispatch.
Result<int64_t> measure_batch1(const std::shared_ptr<const runtime::Model>& model) {
  runtime::Session session(model);
  std::vector<runtime::Shape> shapes;
  for (const auto& spec : model->inputs()) shapes.push_back(runtime::concrete_shape(spec, 1));
  auto plan = session.prepare(shapes);
  if (!plan.ok()) return plan.error();
  std::vector<std::vector<std::byte>> in_buf, out_buf;
  std::vector<const void*> ins;
  std::vector<void*> outs;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    in_buf.emplace_back(shapes[i].elements() * runtime::dtype_bytes(model->inputs()[i].dtype));
    ins.push_back(in_buf.back().data());
  }
  for (std::size_t j = 0; j < model->outputs().size(); ++j) {
    out_buf.emplace_back((*plan)->output_shape(j).elements() *
                         runtime::dtype_bytes(model->outputs()[j].dtype));
    outs.push_back(out_buf.back().data());
  }
  int64_t best = INT64_MAX;
  for (int i = 0; i < kCostProbeRuns; ++i) {
    int64_t t0 = ring::monotonic_ns();
    if (auto s = session.run(**plan, ins, outs); !s.ok()) return s.error();
    best = std::min(best, ring::monotonic_ns() - t0);
  }
  return best;
}

}  // namespace

Result<ModelSet> ModelSet::load(const std::vector<ModelConfig>& configs) {
  ModelSet set;
  for (const auto& cfg : configs) {
    auto model = runtime::Model::load(cfg.path);
    if (!model.ok()) {
      return make_error(model.error().code, "model '" + cfg.name + "' (" + cfg.path +
                                                "): " + model.error().message);
    }
    if (!model.value()->value_inputs().empty()) {
      const auto& input = model.value()->inputs()[model.value()->value_inputs()[0]];
      return make_error(ErrorCode::kUnsupported,
                        "model '" + cfg.name + "' (" + cfg.path + "): input '" + input.name +
                            "' sets a shape inside the model (e.g. a Reshape's target); coprocd "
                            "serves models whose shapes follow from their input shapes alone");
    }
    auto cost = measure_batch1(model.value());
    if (!cost.ok()) {
      return make_error(cost.error().code, "model '" + cfg.name + "' (" + cfg.path +
                                               ") failed its first run: " + cost.error().message);
    }
    LoadedModel loaded;
    loaded.id = static_cast<uint32_t>(set.models_.size());
    loaded.name = cfg.name;
    loaded.model = std::move(model.value());
    loaded.batch1_exec_ns = cost.value();
    spdlog::info("model '{}' loaded from {}: {} inputs, {} outputs, {} weight bytes, batch-1 run {} ns",
                 loaded.name, cfg.path, loaded.model->inputs().size(),
                 loaded.model->outputs().size(), loaded.model->weight_bytes(),
                 loaded.batch1_exec_ns);
    set.models_.push_back(std::move(loaded));
  }
  return set;
}

std::vector<uint8_t> ModelSet::model_table() const {
  flatbuffers::FlatBufferBuilder fbb;
  auto infos = [&](const std::vector<runtime::TensorSpec>& specs) {
    std::vector<flatbuffers::Offset<fb::TensorInfo>> out;
    for (const auto& spec : specs) {
      out.push_back(fb::CreateTensorInfo(fbb, fbb.CreateString(spec.name),
                                         static_cast<fb::DType>(spec.dtype),
                                         fbb.CreateVector(spec.dims)));
    }
    return fbb.CreateVector(out);
  };
  std::vector<flatbuffers::Offset<fb::ModelInfo>> models;
  for (const auto& m : models_) {
    auto name = fbb.CreateString(m.name);
    auto inputs = infos(m.model->inputs());
    auto outputs = infos(m.model->outputs());
    models.push_back(fb::CreateModelInfo(fbb, m.id, name, inputs, outputs, /*max_batch=*/0));
  }
  fbb.Finish(fb::CreateModelTable(fbb, fbb.CreateVector(models)));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

}  // namespace coproc::daemon
