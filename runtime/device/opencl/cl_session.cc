#include "device/opencl/cl_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "device/opencl/cl_kernels.h"
#include "graph/graph.h"
#include "ops/ops.h"
#include "plan/plan.h"

namespace coproc::runtime {

namespace ocl = kernels::opencl;
using detail::Internals;
using detail::Ref;
using detail::Step;

Result<std::shared_ptr<ClDevice>> ClDevice::open(const ocl::Selector& selector) {
  std::string error;
  std::unique_ptr<ocl::Device> device = ocl::Device::open(selector, &error);
  if (device == nullptr) return make_error(ErrorCode::kUnavailable, error);
  return std::make_shared<ClDevice>(std::move(device));
}

ClDevice::ClDevice(std::unique_ptr<ocl::Device> device)
    : device_(std::move(device)), binder_(detail::make_cl_binder(*device_)) {
  const ocl::DeviceInfo& cl = device_->info();
  info_.kind = DeviceKind::kOpenCl;
  info_.name = cl.name;
  info_.platform = cl.platform;
  info_.version = cl.version;
  info_.compute_units = cl.compute_units;
  info_.memory_bytes = cl.global_memory_bytes;
}

ClDevice::~ClDevice() = default;

bool ClDevice::supports(std::string_view op) const { return detail::find_op(op) != nullptr; }

Result<std::shared_ptr<const PlacedModel>> ClDevice::place(std::shared_ptr<const Model> model) {
  auto uploaded =
      ClModel::upload(std::move(model), std::static_pointer_cast<ClDevice>(shared_from_this()));
  if (!uploaded) return uploaded.error();
  return std::shared_ptr<const PlacedModel>(std::move(uploaded).value());
}

Result<std::shared_ptr<Device>> open_cl_device(const DeviceOptions& options) {
  ocl::Selector selector;
  selector.platform = options.platform;
  selector.device = options.device;
  selector.platform_index = options.platform_index;
  selector.device_index = options.device_index;
  auto opened = ClDevice::open(selector);
  if (!opened) return opened.error();
  return std::shared_ptr<Device>(std::move(opened).value());
}

Result<std::shared_ptr<const ClModel>> ClModel::upload(std::shared_ptr<const Model> model,
                                                       std::shared_ptr<ClDevice> device) {
  std::shared_ptr<ClModel> cl(new ClModel(model, device));
  const std::lock_guard lock(device->mutex());
  ocl::Device& d = device->device();
  for (const detail::HostTensor& w : Internals::graph(*model).weights) {
    if (w.bytes.empty()) continue;  // packed only, or empty: nothing reads it here
    std::string error;
    ocl::Buffer buffer = d.alloc(w.bytes.size(), &error);
    if (buffer.get() == nullptr) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("model '{}': cannot allocate {} bytes of weights on {}: {}",
                                    model->path(), w.bytes.size(), device->info().name, error));
    }
    d.write(buffer.at(), w.bytes.data(), w.bytes.size());
    cl->weights_.push_back({w.bytes.data(), w.bytes.size(), std::move(buffer)});
  }
  if (const ocl::Failure f = d.finish(); f.failed) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("model '{}': uploading weights: {}", model->path(), f.message));
  }
  std::sort(cl->weights_.begin(), cl->weights_.end(),
            [](const Upload& a, const Upload& b) { return a.host < b.host; });
  return std::shared_ptr<const ClModel>(std::move(cl));
}

std::unique_ptr<Session> ClModel::make_session(SessionLimits limits) const {
  return std::make_unique<ClSession>(shared_from_this(), limits);
}

ocl::Mem ClModel::find(const std::byte* data) const {
  // The last upload starting at or before data, if data lies inside it.
  auto it = std::upper_bound(weights_.begin(), weights_.end(), data,
                             [](const std::byte* p, const Upload& u) { return p < u.host; });
  if (it == weights_.begin()) return {};
  --it;
  if (data >= it->host + it->bytes) return {};
  return it->buffer.at(static_cast<std::size_t>(data - it->host));
}

// A plan and what it needs on the device besides the session's buffers: the constants it folded,
// each constant operand's device location, and, for a batch that run_rows may split, the plans
// of its two halves.
struct ClSession::Prepared {
  std::unique_ptr<Plan> plan;
  ocl::Buffer folded;                // the plan's own constants, packed
  std::vector<ocl::Mem> const_mems;  // per ref of the plan: its Mem when the ref is kConst
  int64_t rows = 0;                  // dim 0 of every input and output; 0: not splittable
  std::unique_ptr<Prepared> halves[2];
};

ClSession::ClSession(std::shared_ptr<const ClModel> model, SessionLimits limits)
    : model_(std::move(model)), limits_(limits) {
  COPROC_CHECK(model_ != nullptr);
}

ClSession::~ClSession() = default;

Status ClSession::grow(std::vector<ocl::Buffer>* buffers, std::size_t count,
                       std::span<const std::size_t> bytes) {
  if (buffers->size() < count) buffers->resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Zero-byte tensors still get a buffer: a Mem must name one.
    const std::size_t want = std::max<std::size_t>(bytes[i], 4);
    if ((*buffers)[i].bytes() >= want) continue;
    std::string error;
    ocl::Buffer b = model_->device().device().alloc(want, &error);
    if (b.get() == nullptr) {
      return make_error(
          ErrorCode::kResourceExhausted,
          fmt::format("cannot allocate {} bytes on the OpenCL device: {}", want, error));
    }
    (*buffers)[i] = std::move(b);
  }
  return {};
}

Status ClSession::grow_pinned(std::vector<Pinned>* pins, std::size_t count,
                              std::span<const std::size_t> bytes) {
  if (pins->size() < count) pins->resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t want = std::max<std::size_t>(bytes[i], 4);
    if ((*pins)[i].buffer.bytes() >= want) continue;
    std::string error;
    Pinned p;
    p.buffer = model_->device().device().alloc_pinned(want, &p.host, &error);
    if (p.buffer.get() == nullptr) {
      return make_error(
          ErrorCode::kResourceExhausted,
          fmt::format("cannot allocate {} bytes of pinned host memory: {}", want, error));
    }
    (*pins)[i] = std::move(p);
  }
  return {};
}

Result<const Plan*> ClSession::prepare_shapes(std::span<const Shape> input_shapes,
                                              std::span<const void* const> input_values) {
  if (Status s = detail::Planner::check_shapes(input_shapes); !s) return s.error();
  for (auto it = plans_.rbegin(); it != plans_.rend(); ++it) {
    if (detail::Planner::matches(*(*it)->plan, model(), input_shapes, input_values)) {
      std::rotate(it.base() - 1, it.base(), plans_.end());
      return static_cast<const Plan*>(plans_.back()->plan.get());
    }
  }
  auto prepared = prepare_plan(input_shapes, input_values);
  if (!prepared) return prepared.error();
  Prepared& p = **prepared;
  // A batch every input and output of which has the same dim 0 of two rows or more may run as
  // two halves (run_rows): their plans are made now, so that run_rows allocates nothing.
  const Plan& plan = *p.plan;
  const int64_t rows =
      input_shapes.empty() || input_shapes[0].rank == 0 ? 0 : input_shapes[0].dims[0];
  bool splittable = rows >= 2 && plan.num_outputs() > 0;
  for (const Shape& s : input_shapes) splittable &= s.rank > 0 && s.dims[0] == rows;
  for (std::size_t j = 0; j < plan.num_outputs(); ++j) {
    splittable &= plan.output_shape(j).rank > 0 && plan.output_shape(j).dims[0] == rows;
  }
  if (splittable && model().value_inputs().empty()) {
    // A model whose dim 0 is fixed plans no halves: it runs whole.
    std::vector<Shape> half(input_shapes.begin(), input_shapes.end());
    bool planned = true;
    for (int h = 0; h < 2 && planned; ++h) {
      for (Shape& s : half) s.dims[0] = h == 0 ? rows / 2 : rows - rows / 2;
      auto made = prepare_plan(half, {});
      planned = made.ok();
      if (planned) p.halves[h] = std::move(made).value();
    }
    p.rows = planned ? rows : 0;
  }
  if (limits_.max_plans != 0 && plans_.size() >= limits_.max_plans) plans_.erase(plans_.begin());
  plans_.push_back(std::move(prepared).value());
  return static_cast<const Plan*>(plans_.back()->plan.get());
}

Result<std::unique_ptr<ClSession::Prepared>> ClSession::prepare_plan(
    std::span<const Shape> input_shapes, std::span<const void* const> input_values) {
  ClDevice& cl = model_->device();
  const std::lock_guard lock(cl.mutex());
  ocl::Device& device = cl.device();
  auto built =
      detail::Planner::build_within(model(), input_shapes, input_values, limits_, cl.binder());
  if (!built) return built.error();
  auto prepared = std::make_unique<Prepared>();
  prepared->plan = std::move(built).value();
  const Plan& plan = *prepared->plan;
  const std::vector<Ref>& refs = Internals::refs(plan);
  const std::vector<std::size_t>& ref_bytes = Internals::ref_bytes(plan);

  // Constants: weights are on the device already; the plan's own folded values go into one
  // buffer, each at an offset aligned for any element type.
  constexpr std::size_t kAlign = 256;
  std::vector<std::size_t> offsets(refs.size(), 0);
  std::size_t folded_bytes = 0;
  for (std::size_t r = 0; r < refs.size(); ++r) {
    const Ref& ref = refs[r];
    if (ref.loc != Ref::Loc::kConst || model_->find(ref.data).present()) continue;
    offsets[r] = folded_bytes;
    folded_bytes += (ref_bytes[r] + kAlign - 1) / kAlign * kAlign;
  }
  if (folded_bytes > 0) {
    std::string error;
    prepared->folded = device.alloc(folded_bytes, &error);
    if (prepared->folded.get() == nullptr) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("cannot allocate {} bytes of constants on the OpenCL device: "
                                    "{}",
                                    folded_bytes, error));
    }
  }
  prepared->const_mems.assign(refs.size(), ocl::Mem{});
  for (std::size_t r = 0; r < refs.size(); ++r) {
    const Ref& ref = refs[r];
    if (ref.loc != Ref::Loc::kConst) continue;
    if (ocl::Mem weight = model_->find(ref.data); weight.present()) {
      prepared->const_mems[r] = weight;
      continue;
    }
    if (ref.data == nullptr && ref_bytes[r] > 0) {
      return make_error(ErrorCode::kInternal,
                        "a weight is held only packed: load the model with keep_unpacked");
    }
    prepared->const_mems[r] = prepared->folded.at(offsets[r]);
    if (ref_bytes[r] > 0) device.write(prepared->const_mems[r], ref.data, ref_bytes[r]);
  }
  if (const ocl::Failure f = device.finish(); f.failed) {
    return make_error(ErrorCode::kInternal, "uploading a plan's constants: " + f.message);
  }

  // Buffers big enough for this plan, so that run() allocates nothing.
  if (scratch_.bytes() < std::max<std::size_t>(plan.scratch_bytes(), 4)) {
    std::string error;
    scratch_ = device.alloc(std::max<std::size_t>(plan.scratch_bytes(), 4), &error);
    if (scratch_.get() == nullptr) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("cannot allocate {} bytes of scratch on the OpenCL device: {}",
                                    plan.scratch_bytes(), error));
    }
  }
  const std::vector<std::size_t>& input_bytes = Internals::input_bytes(plan);
  const std::vector<std::size_t>& output_bytes = Internals::output_bytes(plan);
  if (Status s = grow(&inputs_, plan.num_inputs(), input_bytes); !s) return s.error();
  if (Status s = grow(&outputs_, plan.num_outputs(), output_bytes); !s) return s.error();
  if (Status s = grow_pinned(&input_pins_, plan.num_inputs(), input_bytes); !s) {
    return s.error();
  }
  if (Status s = grow_pinned(&output_pins_, plan.num_outputs(), output_bytes); !s) {
    return s.error();
  }
  const std::size_t step_tensors = Internals::max_step_tensors(plan);
  if (mems_.size() < step_tensors) {
    mems_.resize(step_tensors);
    in_ptrs_.resize(step_tensors);
    out_ptrs_.resize(step_tensors);
  }
  return prepared;
}

bool ClSession::constant_output(const Plan& plan, std::size_t j) {
  const std::vector<detail::OutputCopy>& copies = Internals::copies(plan);
  return std::any_of(copies.begin(), copies.end(), [&](const detail::OutputCopy& c) {
    return c.output == j && c.src.loc == Ref::Loc::kConst;
  });
}

const ClSession::Prepared& ClSession::prepared_of(const Plan& plan) const {
  const auto found = std::find_if(plans_.begin(), plans_.end(),
                                  [&](const auto& p) { return p->plan.get() == &plan; });
  COPROC_CHECK(found != plans_.end());  // a plan of this session's, still cached
  return **found;
}

Status ClSession::run(const Plan& plan, std::span<const void* const> inputs,
                      std::span<void* const> outputs) {
  if (Status s = detail::Planner::check_buffers(plan, model(), inputs, outputs); !s) return s;
  const Prepared& prepared = prepared_of(plan);
  ClDevice& cl = model_->device();
  const std::lock_guard lock(cl.mutex());
  ocl::Device& device = cl.device();
  const std::vector<std::size_t>& input_bytes = Internals::input_bytes(plan);
  const std::vector<std::size_t>& output_bytes = Internals::output_bytes(plan);
  Bases& bases = bases_[0];
  bases.inputs.clear();
  bases.outputs.clear();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    bases.inputs.push_back(inputs_[i].at());
    if (input_bytes[i] > 0) device.write(inputs_[i].at(), inputs[i], input_bytes[i]);
  }
  for (std::size_t j = 0; j < outputs.size(); ++j) bases.outputs.push_back(outputs_[j].at());
  if (Status s = enqueue_steps(prepared, bases, outputs); !s) return s;
  for (std::size_t j = 0; j < outputs.size(); ++j) {
    if (output_bytes[j] > 0 && !constant_output(plan, j)) {
      device.read(outputs[j], outputs_[j].at(), output_bytes[j]);
    }
  }
  return finish_run();
}

Status ClSession::run_rows(const Plan& plan, std::span<const void* const> inputs,
                           std::span<void* const> outputs) {
  if (Status s = detail::Planner::check_buffers(plan, model(), inputs, outputs); !s) return s;
  const Prepared& prepared = prepared_of(plan);
  std::size_t transfer_bytes = 0;
  for (const std::size_t b : Internals::input_bytes(plan)) transfer_bytes += b;
  for (const std::size_t b : Internals::output_bytes(plan)) transfer_bytes += b;
  if (prepared.rows == 0 || transfer_bytes < overlap_min_bytes_) return run(plan, inputs, outputs);
  ++split_runs_;
  return run_halves(prepared, inputs, outputs);
}

Status ClSession::run_halves(const Prepared& prepared, std::span<const void* const> inputs,
                             std::span<void* const> outputs) {
  const Plan& plan = *prepared.plan;
  ClDevice& cl = model_->device();
  const std::lock_guard lock(cl.mutex());
  ocl::Device& device = cl.device();
  // Every input and output is [rows, ...] and dense: half h is a contiguous byte range of each.
  const auto rows = static_cast<std::size_t>(prepared.rows);
  const std::size_t first_rows = rows / 2;
  ocl::Event uploaded[2];
  Bases* const bases = bases_;
  std::vector<void*>* const host_outputs = host_outputs_;
  for (int h = 0; h < 2; ++h) {
    bases[h].inputs.clear();
    bases[h].outputs.clear();
    host_outputs[h].clear();
    const std::size_t begin = h == 0 ? 0 : first_rows;
    const std::size_t count = h == 0 ? first_rows : rows - first_rows;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::size_t row = Internals::input_bytes(plan)[i] / rows;
      const ocl::Mem at = inputs_[i].at(begin * row);
      bases[h].inputs.push_back(at);
      ocl::Event e =
          device.upload(at, static_cast<const std::byte*>(inputs[i]) + begin * row, count * row);
      if (e.get() != nullptr) uploaded[h] = std::move(e);  // the queue is in order: the last
    }
    for (std::size_t j = 0; j < outputs.size(); ++j) {
      const std::size_t row = Internals::output_bytes(plan)[j] / rows;
      bases[h].outputs.push_back(outputs_[j].at(begin * row));
      host_outputs[h].push_back(static_cast<std::byte*>(outputs[j]) + begin * row);
    }
  }
  for (int h = 0; h < 2; ++h) {
    device.compute_after(uploaded[h]);
    if (Status s = enqueue_steps(*prepared.halves[h], bases[h], host_outputs[h]); !s) return s;
    const ocl::Event computed = device.compute_marker();
    const Plan& half = *prepared.halves[h]->plan;
    for (std::size_t j = 0; j < outputs.size(); ++j) {
      if (constant_output(half, j)) continue;
      device.download_after(host_outputs[h][j], bases[h].outputs[j], half.output_bytes(j),
                            computed);
    }
  }
  return finish_run();
}

Status ClSession::enqueue_steps(const Prepared& prepared, const Bases& bases,
                                std::span<void* const> host_outputs) {
  const Plan& plan = *prepared.plan;
  ocl::Device& device = model_->device().device();
  const auto mem = [&](const Ref& ref, std::size_t r) -> ocl::Mem {
    switch (ref.loc) {
      case Ref::Loc::kInput:
        return bases.inputs[ref.index];
      case Ref::Loc::kOutput:
        return bases.outputs[ref.index];
      case Ref::Loc::kScratch:
        return scratch_.at(ref.offset);
      case Ref::Loc::kConst:
        return prepared.const_mems[r];
      case Ref::Loc::kNone:
        break;
    }
    return {};
  };
  const std::vector<Ref>& refs = Internals::refs(plan);
  for (const Step& step : Internals::steps(plan)) {
    const std::size_t n = std::size_t{step.inputs} + step.outputs;
    for (std::size_t k = 0; k < n; ++k) {
      mems_[k] = mem(refs[step.first + k], step.first + k);
      void* p = mems_[k].present() ? &mems_[k] : nullptr;
      if (k < step.inputs) {
        in_ptrs_[k] = p;
      } else {
        out_ptrs_[k - step.inputs] = p;
      }
    }
    const detail::KernelIO io{{in_ptrs_.data(), step.inputs}, {out_ptrs_.data(), step.outputs}};
    if (Status s = step.kernel->run(io); !s) {
      (void)device.finish();  // leave the queues empty for the next run
      return make_error(s.error().code, fmt::format("node '{}' ({}): {}", step.node->name,
                                                    step.node->op, s.error().message));
    }
  }
  for (const detail::OutputCopy& copy : Internals::copies(plan)) {
    if (copy.bytes == 0) continue;
    if (copy.src.loc == Ref::Loc::kConst) {
      // A constant output: straight from the host, and nothing on the device to download.
      std::memcpy(host_outputs[copy.output], copy.src.data, copy.bytes);
      continue;
    }
    device.copy(bases.outputs[copy.output], mem(copy.src, 0), copy.bytes);
  }
  return {};
}

Status ClSession::finish_run() {
  const ocl::Failure failure = model_->device().device().finish();
  if (!failure.failed) return {};
  if (failure.bad_index) {
    const auto& nodes = Internals::graph(model_->model()).nodes;
    const auto tag = static_cast<std::size_t>(failure.tag);
    const std::string name = tag < nodes.size() ? nodes[tag].name : "?";
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("node '{}' (Gather): {}", name, failure.message));
  }
  return make_error(ErrorCode::kInternal, "OpenCL device: " + failure.message);
}

}  // namespace coproc::runtime
