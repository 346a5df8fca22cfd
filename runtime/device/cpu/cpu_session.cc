// Session: the plan cache and scratch memory of one executing thread, and the loop that runs a
// plan's kernel calls.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "coproc/runtime/model.h"
#include "plan/plan.h"

namespace coproc::runtime {
namespace {

using detail::Ref;
using detail::Step;

// The memory of one run: the caller's buffers and the session's scratch.
class Frame {
 public:
  Frame(std::span<const void* const> inputs, std::span<void* const> outputs, std::byte* scratch)
      : inputs_(inputs), outputs_(outputs), scratch_(scratch) {}

  const void* read(const Ref& ref) const {
    switch (ref.loc) {
      case Ref::Loc::kInput:
        return inputs_[ref.index];
      case Ref::Loc::kConst:
        return ref.data;
      case Ref::Loc::kNone:
        return nullptr;
      case Ref::Loc::kOutput:
      case Ref::Loc::kScratch:
        return write(ref);
    }
    return nullptr;
  }

  // Only outputs and scratch are ever written: inputs and constants are read-only.
  void* write(const Ref& ref) const {
    if (ref.loc == Ref::Loc::kOutput) return outputs_[ref.index];
    COPROC_CHECK(ref.loc == Ref::Loc::kScratch);
    return scratch_ + ref.offset;
  }

 private:
  std::span<const void* const> inputs_;
  std::span<void* const> outputs_;
  std::byte* scratch_;
};

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

std::size_t Plan::peak_bytes() const {
  std::size_t bytes = scratch_bytes_;
  for (const std::size_t b : output_bytes_) bytes += b;
  for (const std::size_t b : input_bytes_) bytes += b;
  return bytes;
}

void Session::FreeDeleter::operator()(void* p) const { std::free(p); }

Session::Session(std::shared_ptr<const Model> model, SessionLimits limits)
    : model_(std::move(model)), limits_(limits) {
  COPROC_CHECK(model_ != nullptr);
}

Session::~Session() = default;

Result<const Plan*> Session::prepare(std::span<const Shape> input_shapes,
                                     std::span<const void* const> input_values) {
  if (Status s = detail::Planner::check_shapes(input_shapes); !s) return s.error();
  for (auto it = plans_.rbegin(); it != plans_.rend(); ++it) {
    if (detail::Planner::matches(**it, *model_, input_shapes, input_values)) {
      // The most recently used goes last; from the back this is usually the first look.
      std::rotate(it.base() - 1, it.base(), plans_.end());
      return static_cast<const Plan*>(plans_.back().get());
    }
  }
  auto built = detail::Planner::build_within(*model_, input_shapes, input_values, limits_);
  if (!built) return built.error();
  std::unique_ptr<Plan> plan = std::move(built).value();
  if (limits_.max_plans != 0 && plans_.size() >= limits_.max_plans) {
    plans_.erase(plans_.begin());  // the least recently used
  }
  if (plan->scratch_bytes_ > scratch_capacity_bytes_) {
    // Offsets are multiples of kScratchAlignment, and so is the size aligned_alloc requires.
    void* memory = std::aligned_alloc(detail::kScratchAlignment, plan->scratch_bytes_);
    if (memory == nullptr) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("cannot allocate {} bytes of scratch", plan->scratch_bytes_));
    }
    scratch_.reset(static_cast<std::byte*>(memory));
    scratch_capacity_bytes_ = plan->scratch_bytes_;
  }
  if (io_.size() < plan->max_step_tensors_) {
    io_.resize(plan->max_step_tensors_);
    out_.resize(plan->max_step_tensors_);
  }
  plans_.push_back(std::move(plan));
  return static_cast<const Plan*>(plans_.back().get());
}

Status Session::run(const Plan& plan, std::span<const void* const> inputs,
                    std::span<void* const> outputs) {
  if (Status s = detail::Planner::check_buffers(plan, *model_, inputs, outputs); !s) return s;
  // A plan from another session would index past our scratch.
  COPROC_CHECK(plan.scratch_bytes_ <= scratch_capacity_bytes_);
  COPROC_CHECK(plan.max_step_tensors_ <= io_.size());
  const Frame frame(inputs, outputs, scratch_.get());
  for (const Step& step : plan.steps_) {
    const Ref* refs = plan.refs_.data() + step.first;
    for (uint16_t k = 0; k < step.inputs; ++k) io_[k] = frame.read(refs[k]);
    void** outs = out_.data();
    for (uint16_t k = 0; k < step.outputs; ++k) {
      const Ref& ref = refs[step.inputs + k];
      outs[k] = ref.loc == Ref::Loc::kNone ? nullptr : frame.write(ref);
    }
    const detail::KernelIO io{{io_.data(), step.inputs}, {outs, step.outputs}};
    if (Status s = step.kernel->run(io); !s) {
      return make_error(s.error().code, fmt::format("node '{}' ({}): {}", step.node->name,
                                                    step.node->op, s.error().message));
    }
  }
  for (const detail::OutputCopy& copy : plan.copies_) {
    if (copy.bytes > 0) std::memcpy(outputs[copy.output], frame.read(copy.src), copy.bytes);
  }
  return {};
}

namespace detail {

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
                                                    kernels::opencl::Device* cl) {
  auto built = build(model, input_shapes, input_values, cl);
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
                              std::span<const void* const> inputs,
                              std::span<void* const> outputs) {
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
