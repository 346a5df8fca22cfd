// Planner: concrete input shapes -> a Plan. Validates the inputs against the model, plans every
// node in order (each operator's plan() resolves its output shapes by the ONNX rules and chooses
// its kernel), folds what is known while planning (shape arithmetic), has the device bind the
// kernels of the nodes that run, then asks memory_plan where every tensor lives.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "plan/memory_plan.h"
#include "plan/plan.h"

namespace coproc::runtime {

Plan::Plan() = default;
Plan::~Plan() = default;

std::size_t Plan::output_bytes(std::size_t j) const { return output_bytes_[j]; }
std::size_t Plan::peak_bytes() const {
  std::size_t bytes = scratch_bytes_;
  for (const std::size_t b : output_bytes_) bytes += b;
  for (const std::size_t b : input_bytes_) bytes += b;
  return bytes;
}
std::size_t Plan::num_kernel_calls() const { return steps_.size(); }
std::size_t Plan::num_output_copies() const { return copies_.size(); }

namespace detail {

Status plan_node(const Graph& graph, const Node& node, std::span<const TensorInfo> in,
                 std::vector<TensorInfo>* out, KernelChoice* choice, bool describe) {
  out->assign(node.outputs.size(), TensorInfo{});
  PlanContext ctx{graph, node, in, *out, *choice, describe};
  for (std::size_t k = 0; k < in.size(); ++k) {
    if ((node.def->value_operands >> k & 1u) == 0 || !in[k].present()) continue;
    if (in[k].value == nullptr) {
      const std::string& name = graph.values[static_cast<std::size_t>(node.inputs[k])].name;
      return ctx.unsupported(fmt::format(
          "input {} ('{}') sets a shape or axes, so it must be known when planning: a constant, "
          "a computation on shapes, or a model input given to prepare()",
          k, name));
    }
    if (is_float(in[k].dtype)) {
      return ctx.fail(fmt::format("input {} must be an integer tensor, not float32", k));
    }
  }
  if (Status s = node.def->plan(ctx); !s) return s;
  for (std::size_t o = 0; o < out->size(); ++o) {
    if (node.outputs[o] < 0) continue;
    const TensorInfo& info = (*out)[o];
    if (info.dtype == DType::kInvalid) {
      return ctx.unsupported(fmt::format("output {} is not produced by this runtime", o));
    }
    if (info.shape.rank < 0 || info.shape.rank > kMaxRank ||
        bounded_elements(info.shape.view()) < 0) {
      return ctx.fail(fmt::format("output {} {} has more than {} elements or rank over {}", o,
                                  info.shape.to_string(), kMaxTensorElements, kMaxRank));
    }
  }
  const bool view = node.def->aliasing == Aliasing::kView;
  COPROC_CHECK((choice->host == nullptr) == view);
  return {};
}

Result<std::vector<HostTensor>> run_on_host(const Node& node, const Kernel* kernel,
                                            std::span<const TensorInfo> in,
                                            std::span<const TensorInfo> out) {
  std::vector<HostTensor> results;
  for (const TensorInfo& info : out) {
    results.push_back(info.present() ? HostTensor::make(info.dtype, info.shape) : HostTensor{});
  }
  if (kernel == nullptr) {  // a view: the input's bytes
    results[0].bytes = in[0].value->bytes;
    return results;
  }
  std::vector<const void*> in_ptrs;
  for (const TensorInfo& info : in) {
    in_ptrs.push_back(info.value != nullptr ? info.value->bytes.data() : nullptr);
  }
  std::vector<void*> out_ptrs;
  for (HostTensor& t : results) out_ptrs.push_back(t.bytes.data());
  const Status s = kernel->run(KernelIO{in_ptrs, out_ptrs});
  if (!s) {
    return make_error(s.error().code,
                      fmt::format("node '{}' ({}): {}", node.name, node.op, s.error().message));
  }
  return results;
}

namespace {

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

std::string spec_string(const GraphInput& input) {
  std::vector<std::string> dims;
  for (std::size_t d = 0; d < input.dims.size(); ++d) {
    dims.push_back(input.dims[d] >= 0         ? std::to_string(input.dims[d])
                   : input.symbols[d].empty() ? std::string("?")
                                              : input.symbols[d]);
  }
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// What the Builder makes; Planner (a friend of Plan) moves it into a Plan.
struct PlanParts {
  std::vector<Shape> output_shapes;
  std::vector<std::size_t> output_bytes;
  std::vector<Step> steps;
  std::vector<Ref> refs;
  std::vector<std::size_t> ref_bytes;
  std::vector<std::unique_ptr<Kernel>> kernels;
  std::vector<std::unique_ptr<HostTensor>> folded;
  std::vector<OutputCopy> copies;
  std::size_t scratch_bytes = 0;
};

class Builder {
 public:
  Builder(const Graph& graph, std::span<const Shape> input_shapes,
          std::span<const void* const> input_values, const Binder& binder)
      : graph_(graph),
        input_shapes_(input_shapes),
        input_values_(input_values),
        binder_(binder),
        infos_(graph.values.size()) {}

  Result<PlanParts> build() {
    if (Status s = check_inputs(); !s) return s.error();
    PlanParts parts;
    for (std::size_t v = 0; v < graph_.values.size(); ++v) {
      const Value& value = graph_.values[v];
      const auto index = static_cast<std::size_t>(value.index);
      if (value.kind == Value::Kind::kInput) infos_[v] = {value.dtype, input_shapes_[index]};
      if (value.kind == Value::Kind::kWeight) {
        const HostTensor& w = graph_.weights[index];
        infos_[v] = {w.dtype, w.shape, &w};
      }
    }
    // Inputs whose values set shapes: copied once, here, and planned as known.
    for (const int32_t v : graph_.value_inputs) {
      const Value& value = graph_.values[static_cast<std::size_t>(v)];
      const auto index = static_cast<std::size_t>(value.index);
      const void* data = index < input_values_.size() ? input_values_[index] : nullptr;
      TensorInfo& info = infos_[static_cast<std::size_t>(v)];
      if (data == nullptr && info.shape.elements() != 0) {
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("input '{}' sets a shape in the model, so planning needs "
                                      "its values, which were not given",
                                      value.name));
      }
      auto t = std::make_unique<HostTensor>(HostTensor::make(info.dtype, info.shape));
      if (!t->bytes.empty()) std::memcpy(t->bytes.data(), data, t->bytes.size());
      info.value = t.get();
      parts.folded.push_back(std::move(t));
    }

    std::vector<int32_t> executed;
    std::vector<TensorInfo> in, out;
    const bool describe = binder_.reads_calls();
    for (std::size_t n = 0; n < graph_.nodes.size(); ++n) {
      const Node& node = graph_.nodes[n];
      in.clear();
      bool known = true;
      for (const int32_t v : node.inputs) {
        in.push_back(v >= 0 ? infos_[static_cast<std::size_t>(v)] : TensorInfo{});
        // Shape and Size read only shapes, which are always known here.
        if (v >= 0 && in.back().value == nullptr && !node.def->shapes_only) known = false;
      }
      KernelChoice choice;
      if (Status s = plan_node(graph_, node, in, &out, &choice, describe); !s) return s.error();
      int64_t out_elements = 0;
      for (std::size_t o = 0; o < out.size(); ++o) {
        if (node.outputs[o] >= 0) out_elements += out[o].shape.elements();
      }
      if (known && out_elements <= kFoldElementLimit) {
        auto values = run_on_host(node, choice.host.get(), in, out);
        if (!values) return values.error();
        for (std::size_t o = 0; o < out.size(); ++o) {
          if (node.outputs[o] < 0) continue;
          parts.folded.push_back(std::make_unique<HostTensor>(std::move((*values)[o])));
          out[o].value = parts.folded.back().get();
        }
      } else {
        executed.push_back(static_cast<int32_t>(n));
        if (choice.host != nullptr) {  // not a view: the device binds the operator's choice
          auto kernel = binder_.bind(node, std::move(choice));
          if (!kernel) return kernel.error();
          parts.kernels.push_back(std::move(kernel).value());
        }
      }
      for (std::size_t o = 0; o < out.size(); ++o) {
        if (node.outputs[o] >= 0) infos_[static_cast<std::size_t>(node.outputs[o])] = out[o];
      }
    }

    const Storage storage = plan_storage(graph_, infos_, executed);
    std::size_t next_kernel = 0;
    for (const int32_t n : executed) {
      const Node& node = graph_.nodes[static_cast<std::size_t>(n)];
      if (node.def->aliasing == Aliasing::kView) continue;
      Step step;
      step.node = &node;
      step.kernel = parts.kernels[next_kernel++].get();
      step.first = static_cast<uint32_t>(parts.refs.size());
      step.inputs = static_cast<uint16_t>(node.inputs.size());
      step.outputs = static_cast<uint16_t>(node.outputs.size());
      for (const auto* ids : {&node.inputs, &node.outputs}) {
        for (const int32_t v : *ids) {
          parts.refs.push_back(v >= 0 ? storage.refs[static_cast<std::size_t>(v)]
                                      : Ref{Ref::Loc::kNone});
          parts.ref_bytes.push_back(v >= 0 ? tensor_bytes(infos_[static_cast<std::size_t>(v)]) : 0);
        }
      }
      parts.steps.push_back(step);
    }
    for (const int32_t v : graph_.outputs) {
      const TensorInfo& info = infos_[static_cast<std::size_t>(v)];
      parts.output_shapes.push_back(info.shape);
      parts.output_bytes.push_back(tensor_bytes(info));
    }
    parts.copies = storage.copies;
    parts.scratch_bytes = storage.scratch_bytes;
    return parts;
  }

 private:
  Status check_inputs() const {
    if (input_shapes_.size() != graph_.inputs.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("the model has {} inputs, got {} shapes", graph_.inputs.size(),
                                    input_shapes_.size()));
    }
    // The value each named dynamic dim took, and the input that set it.
    std::vector<std::pair<std::string, std::pair<int64_t, std::size_t>>> symbols;
    for (std::size_t i = 0; i < graph_.inputs.size(); ++i) {
      const GraphInput& input = graph_.inputs[i];
      const Shape& shape = input_shapes_[i];
      const std::string& name = graph_.values[static_cast<std::size_t>(input.value)].name;
      const auto fail = [&](const std::string& problem) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("input '{}' (expects {}) got shape {}: {}", name,
                                      spec_string(input), shape.to_string(), problem));
      };
      if (shape.rank < 0 || static_cast<std::size_t>(shape.rank) != input.dims.size()) {
        return fail(fmt::format("rank {} instead of {}", shape.rank, input.dims.size()));
      }
      if (bounded_elements(shape.view()) < 0) {
        return fail(fmt::format("a negative dim, or more than {} elements", kMaxTensorElements));
      }
      for (std::size_t d = 0; d < input.dims.size(); ++d) {
        const int64_t got = shape.dims[d];
        if (input.dims[d] >= 0 && got != input.dims[d]) {
          return fail(fmt::format("dim {} is {} instead of {}", d, got, input.dims[d]));
        }
        if (input.symbols[d].empty()) continue;
        const auto it = std::find_if(symbols.begin(), symbols.end(),
                                     [&](const auto& s) { return s.first == input.symbols[d]; });
        if (it == symbols.end()) {
          symbols.push_back({input.symbols[d], {got, i}});
        } else if (it->second.first != got) {
          const std::string& other =
              graph_.values[static_cast<std::size_t>(graph_.inputs[it->second.second].value)].name;
          return fail(fmt::format("dim {} ({}) is {} but input '{}' has {} = {}", d,
                                  input.symbols[d], got, other, input.symbols[d],
                                  it->second.first));
        }
      }
    }
    return {};
  }

  const Graph& graph_;
  std::span<const Shape> input_shapes_;
  std::span<const void* const> input_values_;
  const Binder& binder_;
  std::vector<TensorInfo> infos_;
};

}  // namespace

Result<std::unique_ptr<Plan>> Planner::build(const Model& model,
                                             std::span<const Shape> input_shapes,
                                             std::span<const void* const> input_values,
                                             const Binder& binder) {
  auto parts = Builder(*model.graph_, input_shapes, input_values, binder).build();
  if (!parts) return parts.error();
  std::unique_ptr<Plan> plan(new Plan());
  plan->input_shapes_.assign(input_shapes.begin(), input_shapes.end());
  for (std::size_t i = 0; i < input_shapes.size(); ++i) {
    plan->input_bytes_.push_back(static_cast<std::size_t>(input_shapes[i].elements()) *
                                 dtype_bytes(model.inputs()[i].dtype));
  }
  for (const int32_t v : model.graph_->value_inputs) {
    const auto index =
        static_cast<std::size_t>(model.graph_->values[static_cast<std::size_t>(v)].index);
    const std::size_t bytes = static_cast<std::size_t>(input_shapes[index].elements()) *
                              dtype_bytes(model.graph_->values[static_cast<std::size_t>(v)].dtype);
    const auto* data = static_cast<const std::byte*>(input_values[index]);
    plan->input_values_.emplace_back(bytes != 0 ? std::vector<std::byte>(data, data + bytes)
                                                : std::vector<std::byte>());
  }
  plan->output_shapes_ = std::move(parts->output_shapes);
  plan->output_bytes_ = std::move(parts->output_bytes);
  plan->steps_ = std::move(parts->steps);
  plan->refs_ = std::move(parts->refs);
  plan->ref_bytes_ = std::move(parts->ref_bytes);
  plan->kernels_ = std::move(parts->kernels);
  plan->folded_ = std::move(parts->folded);
  plan->copies_ = std::move(parts->copies);
  plan->scratch_bytes_ = parts->scratch_bytes;
  for (const Step& s : plan->steps_) {
    plan->max_step_tensors_ = std::max<std::size_t>(plan->max_step_tensors_, s.inputs + s.outputs);
  }
  return plan;
}

Status Planner::check_shapes(std::span<const Shape> input_shapes) {
  // Shapes come off the wire: a rank outside the array would make comparing them read past it.
  for (std::size_t i = 0; i < input_shapes.size(); ++i) {
    if (input_shapes[i].rank < 0 || input_shapes[i].rank > kMaxRank) {
      return invalid(fmt::format("input {} has rank {}; ranks go from 0 to {}", i,
                                 input_shapes[i].rank, kMaxRank));
    }
  }
  return {};
}

bool Planner::matches(const Plan& plan, const Model& model, std::span<const Shape> input_shapes,
                      std::span<const void* const> input_values) {
  if (!std::equal(plan.input_shapes_.begin(), plan.input_shapes_.end(), input_shapes.begin(),
                  input_shapes.end())) {
    return false;
  }
  const std::vector<std::size_t>& value_inputs = model.value_inputs();
  for (std::size_t k = 0; k < value_inputs.size(); ++k) {
    const std::size_t i = value_inputs[k];
    const std::vector<std::byte>& have = plan.input_values_[k];
    if (i >= input_values.size() || (input_values[i] == nullptr && !have.empty()) ||
        (!have.empty() && std::memcmp(have.data(), input_values[i], have.size()) != 0)) {
      return false;
    }
  }
  return true;
}

Result<std::unique_ptr<Plan>> Planner::build_within(const Model& model,
                                                    std::span<const Shape> input_shapes,
                                                    std::span<const void* const> input_values,
                                                    const SessionLimits& limits,
                                                    const Binder& binder) {
  auto built = build(model, input_shapes, input_values, binder);
  if (!built) return built.error();
  const std::size_t peak = (*built)->peak_bytes();
  if (limits.max_peak_bytes != 0 && peak > limits.max_peak_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("running these shapes takes {} bytes of memory (inputs, outputs "
                                  "and scratch), over the limit of {}",
                                  peak, limits.max_peak_bytes));
  }
  return built;
}

Status Planner::check_buffers(const Plan& plan, const Model& model,
                              std::span<const void* const> inputs, std::span<void* const> outputs) {
  if (inputs.size() != plan.num_inputs() || outputs.size() != plan.num_outputs()) {
    return invalid(fmt::format("the plan takes {} inputs and {} outputs, got {} and {}",
                               plan.num_inputs(), plan.num_outputs(), inputs.size(),
                               outputs.size()));
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == nullptr && plan.input_shape(i).elements() > 0) {
      return invalid(fmt::format("input {} ('{}') is null", i, model.inputs()[i].name));
    }
  }
  for (std::size_t j = 0; j < outputs.size(); ++j) {
    if (outputs[j] == nullptr && plan.output_bytes(j) > 0) {
      return invalid(fmt::format("output {} ('{}') is null", j, model.outputs()[j].name));
    }
  }
  return {};
}

}  // namespace detail
}  // namespace coproc::runtime
