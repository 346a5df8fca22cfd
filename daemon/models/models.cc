#include "models/models.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "coproc/coproc_generated.h"
#include "coproc/kernels/opencl.h"
#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {

constexpr int kCostProbeRuns = 5;
constexpr int kDeviceProbeRuns = 3;

// Input shapes for a batch of `rows`: dim 0 is the batch, any other dynamic dim takes `length`.
std::vector<runtime::Shape> batch_shapes(const runtime::Model& model, int64_t rows,
                                         int64_t length) {
  std::vector<runtime::Shape> shapes;
  for (const auto& spec : model.inputs()) {
    runtime::Shape shape = runtime::concrete_shape(spec, length);
    if (shape.rank > 0 && spec.dims[0] < 0) shape.dims[0] = rows;
    shapes.push_back(shape);
  }
  return shapes;
}

// Runs the model for `shapes` on zeroed inputs (after one untimed run, which also builds and
// warms whatever the device compiles) and returns the best of `runs` runs.
Result<int64_t> best_run_ns(runtime::Session& session, const std::vector<runtime::Shape>& shapes,
                            int runs) {
  const runtime::Model& model = session.model();
  auto plan = session.prepare(shapes);
  if (!plan.ok()) return plan.error();
  std::vector<std::vector<std::byte>> in_buf, out_buf;
  std::vector<const void*> ins;
  std::vector<void*> outs;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    in_buf.emplace_back(static_cast<std::size_t>(shapes[i].elements()) *
                        runtime::dtype_bytes(model.inputs()[i].dtype));
    ins.push_back(in_buf.back().data());
  }
  for (std::size_t j = 0; j < model.outputs().size(); ++j) {
    out_buf.emplace_back((*plan)->output_bytes(j));
    outs.push_back(out_buf.back().data());
  }
  if (auto s = session.run(**plan, ins, outs); !s.ok()) return s.error();
  int64_t best = INT64_MAX;
  for (int i = 0; i < runs; ++i) {
    const int64_t t0 = ring::monotonic_ns();
    if (auto s = session.run(**plan, ins, outs); !s.ok()) return s.error();
    best = std::min(best, ring::monotonic_ns() - t0);
  }
  return best;
}

// The batch sizes auto compares: 1, 2, 4, ... and max_batch itself.
std::vector<uint32_t> probe_batches(uint32_t max_batch) {
  std::vector<uint32_t> sizes;
  for (uint32_t b = 1; b < max_batch; b *= 2) sizes.push_back(b);
  sizes.push_back(max_batch);
  return sizes;
}

// The length auto measures a variable-length model at: its middle length bucket, else 1.
int64_t probe_length(const BatchingConfig& b) {
  return b.length_buckets.empty() ? 1 : b.length_buckets[b.length_buckets.size() / 2];
}

// Times both devices at every probe size; the crossover is the smallest size from which the
// OpenCL device is faster at that size and every larger one (so that routing never flips back
// and forth on noise).
Status measure_devices(LoadedModel& m, const BatchingConfig& batching) {
  const auto cpu_session = m.cpu->open_session();
  const auto gpu_session = m.gpu->open_session();
  runtime::Session& cpu = *cpu_session;
  runtime::Session& gpu = *gpu_session;
  const int64_t length = probe_length(batching);
  for (const uint32_t rows : probe_batches(batching.max_batch)) {
    const auto shapes = batch_shapes(*m.model, rows, length);
    auto cpu_ns = best_run_ns(cpu, shapes, kDeviceProbeRuns);
    if (!cpu_ns.ok()) return cpu_ns.error();
    auto gpu_ns = best_run_ns(gpu, shapes, kDeviceProbeRuns);
    if (!gpu_ns.ok()) return gpu_ns.error();
    m.timings.push_back({rows, cpu_ns.value(), gpu_ns.value()});
  }
  m.gpu_from_batch = 0;
  for (auto it = m.timings.rbegin(); it != m.timings.rend() && it->gpu_ns < it->cpu_ns; ++it) {
    m.gpu_from_batch = it->batch;
  }
  std::string table;
  for (const DeviceTiming& t : m.timings) {
    table +=
        fmt::format("{}batch {}: cpu {:.1f} us, gpu {:.1f} us", table.empty() ? "" : "; ", t.batch,
                    static_cast<double>(t.cpu_ns) / 1e3, static_cast<double>(t.gpu_ns) / 1e3);
  }
  spdlog::info("model '{}' on auto, measured at length {}: {}", m.name, length, table);
  if (m.gpu_from_batch == 0) {
    spdlog::info(
        "model '{}': every batch runs on the CPU (the OpenCL device was not faster at "
        "any size up to {})",
        m.name, batching.max_batch);
  } else {
    spdlog::info(
        "model '{}': crossover at batch {}: smaller batches run on the CPU, batches of "
        "{} rows or more on the OpenCL device",
        m.name, m.gpu_from_batch, m.gpu_from_batch);
  }
  return {};
}

// The first input whose dim 1 is dynamic (LoadedModel::length_input); -1 if none is.
int length_input_of(const runtime::Model& model) {
  const auto& inputs = model.inputs();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (variable_length_dim(inputs[i].dims)) return static_cast<int>(i);
  }
  return -1;
}

// Which OpenCL device opencl.platform and opencl.device name: a name fragment or an index each.
runtime::DeviceOptions device_options_of(const Config& config) {
  runtime::DeviceOptions s;
  const auto digits = [](const std::string& v) {
    return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
  };
  if (digits(config.opencl_platform)) {
    s.platform_index = std::stoi(config.opencl_platform);
  } else {
    s.platform = config.opencl_platform;
  }
  if (digits(config.opencl_device)) {
    s.device_index = std::stoi(config.opencl_device);
  } else {
    s.device = config.opencl_device;
  }
  return s;
}

}  // namespace

int gpu_numa_node(const Config& config) {
  const bool uses_gpu =
      std::any_of(config.models.begin(), config.models.end(),
                  [](const ModelConfig& m) { return m.device != DeviceMode::kCpu; });
  if (!uses_gpu) return -1;
  // The device is not opened here (that comes with the models, after placement), so the NUMA
  // node is read from the OpenCL device list, which runtime::DeviceInfo does not carry.
  const runtime::DeviceOptions options = device_options_of(config);
  const kernels::opencl::Selector selector{.platform = options.platform,
                                           .device = options.device,
                                           .platform_index = options.platform_index,
                                           .device_index = options.device_index};
  const auto devices = kernels::opencl::list_devices();
  const int found = kernels::opencl::find_device(devices, selector, nullptr);
  return found < 0 ? -1 : devices[static_cast<std::size_t>(found)].numa_node;
}

Result<ModelSet> ModelSet::load(const Config& config) {
  ModelSet set;
  auto cpu_device = runtime::open_device(runtime::DeviceKind::kCpu);
  if (!cpu_device.ok()) return cpu_device.error();
  set.cpu_device_ = std::move(cpu_device.value());
  bool device_tried = false;
  std::string device_error;
  std::vector<std::string> on_cpu_instead;  // models configured for the device, without one
  for (const auto& cfg : config.models) {
    const auto fail = [&](const Error& e, const std::string& what) {
      return make_error(e.code,
                        fmt::format("model '{}' ({}){}: {}", cfg.name, cfg.path, what, e.message));
    };
    runtime::LoadOptions options;
    const bool wants_gpu = cfg.device != DeviceMode::kCpu;
    options.keep_unpacked = wants_gpu;  // the OpenCL device reads the original layout
    auto model = runtime::Model::load(cfg.path, options);
    if (!model.ok()) return fail(model.error(), "");
    if (!model.value()->value_inputs().empty()) {
      const auto& input = model.value()->inputs()[model.value()->value_inputs()[0]];
      return make_error(ErrorCode::kUnsupported,
                        "model '" + cfg.name + "' (" + cfg.path + "): input '" + input.name +
                            "' sets a shape inside the model (e.g. a Reshape's target); coprocd "
                            "serves models whose shapes follow from their input shapes alone");
    }
    auto on_cpu = set.cpu_device_->place(model.value());
    if (!on_cpu.ok()) return fail(on_cpu.error(), "");
    auto cost = best_run_ns(*on_cpu.value()->open_session(), batch_shapes(*model.value(), 1, 1),
                            kCostProbeRuns);
    if (!cost.ok()) return fail(cost.error(), " failed its first run");
    LoadedModel loaded;
    loaded.id = static_cast<uint32_t>(set.models_.size());
    loaded.name = cfg.name;
    loaded.model = std::move(model.value());
    loaded.cpu = std::move(on_cpu.value());
    loaded.batch1_exec_ns = cost.value();
    loaded.device = cfg.device;
    loaded.max_batch = cfg.batching.max_batch;
    loaded.length_input = length_input_of(*loaded.model);
    if (wants_gpu) {
      if (!device_tried) {
        device_tried = true;
        auto opened = runtime::open_device(runtime::DeviceKind::kOpenCl, device_options_of(config));
        if (opened.ok()) {
          set.gpu_device_ = std::move(opened.value());
          const auto& info = set.gpu_device_->info();
          spdlog::info("OpenCL device: {} ({}, {}), {} compute units, {} MiB", info.name,
                       info.platform, info.version, info.compute_units, info.memory_bytes >> 20);
        } else {
          device_error = opened.error().message;
        }
      }
      if (set.gpu_device_ == nullptr) {
        on_cpu_instead.push_back(fmt::format("'{}' ({})", cfg.name, name_of(cfg.device)));
      }
    }
    if (set.gpu_device_ != nullptr && wants_gpu) {
      auto uploaded = set.gpu_device_->place(loaded.model);
      if (!uploaded.ok()) return fail(uploaded.error(), "");
      loaded.gpu = std::move(uploaded.value());
      if (cfg.device == DeviceMode::kGpu) {
        // Runs at both ends of the batch range, so that whatever the device compiles for small
        // and for large GEMMs is compiled now, on this thread, not while serving.
        const auto session = loaded.gpu->open_session();
        const int64_t length = probe_length(cfg.batching);
        for (const int64_t rows : {int64_t{1}, int64_t{cfg.batching.max_batch}}) {
          auto gpu_cost = best_run_ns(*session, batch_shapes(*loaded.model, rows, length), 1);
          if (!gpu_cost.ok()) return fail(gpu_cost.error(), " failed its first run on OpenCL");
        }
        loaded.gpu_from_batch = 1;
      } else if (Status s = measure_devices(loaded, cfg.batching); !s) {
        return fail(s.error(), " failed while timing the devices");
      }
    }
    spdlog::info(
        "model '{}' loaded from {}: {} inputs, {} outputs, {} weight bytes, batch-1 run "
        "{} ns on the CPU, device {}",
        loaded.name, cfg.path, loaded.model->inputs().size(), loaded.model->outputs().size(),
        loaded.model->weight_bytes(), loaded.batch1_exec_ns,
        name_of(loaded.gpu != nullptr ? cfg.device : DeviceMode::kCpu));
    set.models_.push_back(std::move(loaded));
  }
  if (!on_cpu_instead.empty()) {
    spdlog::warn("no OpenCL device ({}): models {} run on the CPU only", device_error,
                 fmt::join(on_cpu_instead, ", "));
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
    models.push_back(fb::CreateModelInfo(fbb, m.id, name, inputs, outputs, m.max_batch));
  }
  fbb.Finish(fb::CreateModelTable(fbb, fbb.CreateVector(models)));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

}  // namespace coproc::daemon
