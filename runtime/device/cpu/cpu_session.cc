// CpuSession: the plan cache and scratch memory of one executing thread on the CPU, and the loop
// that runs a plan's kernel calls.
#include "device/cpu/cpu_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "plan/plan.h"

namespace coproc::runtime {
namespace {

using detail::Internals;
using detail::Ref;
using detail::Step;

// The CPU runs the host kernel each operator chose.
class HostBinder final : public detail::Binder {
 public:
  bool reads_calls() const override { return false; }
  Result<std::unique_ptr<detail::Kernel>> bind(const detail::Node& /*node*/,
                                               detail::KernelChoice&& choice) const override {
    return std::move(choice.host);
  }
};

const HostBinder kHostBinder;

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

}  // namespace

void CpuSession::FreeDeleter::operator()(void* p) const { std::free(p); }

CpuSession::CpuSession(std::shared_ptr<const Model> model, SessionLimits limits)
    : model_(std::move(model)), limits_(limits) {
  COPROC_CHECK(model_ != nullptr);
}

CpuSession::~CpuSession() = default;

std::unique_ptr<Session> CpuModel::make_session(SessionLimits limits) const {
  return std::make_unique<CpuSession>(model_, limits);
}

Result<const Plan*> CpuSession::prepare_shapes(std::span<const Shape> input_shapes,
                                               std::span<const void* const> input_values) {
  if (Status s = detail::Planner::check_shapes(input_shapes); !s) return s.error();
  for (auto it = plans_.rbegin(); it != plans_.rend(); ++it) {
    if (detail::Planner::matches(**it, *model_, input_shapes, input_values)) {
      // The most recently used goes last; from the back this is usually the first look.
      std::rotate(it.base() - 1, it.base(), plans_.end());
      return static_cast<const Plan*>(plans_.back().get());
    }
  }
  auto built =
      detail::Planner::build_within(*model_, input_shapes, input_values, limits_, kHostBinder);
  if (!built) return built.error();
  std::unique_ptr<Plan> plan = std::move(built).value();
  if (limits_.max_plans != 0 && plans_.size() >= limits_.max_plans) {
    plans_.erase(plans_.begin());  // the least recently used
  }
  if (plan->scratch_bytes() > scratch_capacity_bytes_) {
    // Offsets are multiples of kScratchAlignment, and so is the size aligned_alloc requires.
    void* memory = std::aligned_alloc(detail::kScratchAlignment, plan->scratch_bytes());
    if (memory == nullptr) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("cannot allocate {} bytes of scratch", plan->scratch_bytes()));
    }
    scratch_.reset(static_cast<std::byte*>(memory));
    scratch_capacity_bytes_ = plan->scratch_bytes();
  }
  const std::size_t step_tensors = Internals::max_step_tensors(*plan);
  if (io_.size() < step_tensors) {
    io_.resize(step_tensors);
    out_.resize(step_tensors);
  }
  plans_.push_back(std::move(plan));
  return static_cast<const Plan*>(plans_.back().get());
}

Status CpuSession::run(const Plan& plan, std::span<const void* const> inputs,
                       std::span<void* const> outputs) {
  if (Status s = detail::Planner::check_buffers(plan, *model_, inputs, outputs); !s) return s;
  // A plan from another session would index past our scratch.
  COPROC_CHECK(plan.scratch_bytes() <= scratch_capacity_bytes_);
  COPROC_CHECK(Internals::max_step_tensors(plan) <= io_.size());
  const Frame frame(inputs, outputs, scratch_.get());
  const Ref* const plan_refs = Internals::refs(plan).data();
  for (const Step& step : Internals::steps(plan)) {
    const Ref* refs = plan_refs + step.first;
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
  for (const detail::OutputCopy& copy : Internals::copies(plan)) {
    if (copy.bytes > 0) std::memcpy(outputs[copy.output], frame.read(copy.src), copy.bytes);
  }
  return {};
}

}  // namespace coproc::runtime
