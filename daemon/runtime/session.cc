// Session: the plan cache and scratch memory of one executing thread, and the loop that runs a
// plan's kernel calls.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "coproc/kernels/cpu.h"
#include "runtime/model.h"
#include "runtime/plan.h"

namespace coproc::runtime {
namespace {

namespace cpu = kernels::cpu;
using detail::OpKind;
using detail::Ref;
using detail::Step;

// The memory of one run: the caller's buffers and the session's scratch.
class Frame {
 public:
  Frame(std::span<const void* const> inputs, std::span<void* const> outputs, std::byte* scratch)
      : inputs_(inputs), outputs_(outputs), scratch_(scratch) {}

  const float* read(const Ref& ref) const {
    switch (ref.loc) {
      case Ref::Loc::kInput:
        return static_cast<const float*>(inputs_[ref.index]);
      case Ref::Loc::kWeight:
        return ref.weight;
      case Ref::Loc::kOutput:
      case Ref::Loc::kScratch:
        return write(ref);
    }
    return nullptr;
  }

  // Only outputs and scratch are ever written: inputs and weights are read-only.
  float* write(const Ref& ref) const {
    if (ref.loc == Ref::Loc::kOutput) return static_cast<float*>(outputs_[ref.index]);
    COPROC_CHECK(ref.loc == Ref::Loc::kScratch);
    return reinterpret_cast<float*>(scratch_ + ref.offset);
  }

 private:
  std::span<const void* const> inputs_;
  std::span<void* const> outputs_;
  std::byte* scratch_;
};

cpu::BinaryOp binary_op(OpKind op) {
  switch (op) {
    case OpKind::kSub:
      return cpu::BinaryOp::kSub;
    case OpKind::kMul:
      return cpu::BinaryOp::kMul;
    case OpKind::kDiv:
      return cpu::BinaryOp::kDiv;
    default:
      return cpu::BinaryOp::kAdd;
  }
}

void execute(const Step& s, const Frame& frame) {
  float* out = frame.write(s.out);
  switch (s.op) {
    case OpKind::kGemm:
    case OpKind::kMatMul: {
      const detail::GemmCall& g = s.gemm;
      if (g.copy_c) cpu::broadcast_copy(frame.read(s.in[2]), out, s.broadcast);
      if (g.packed != nullptr) {
        cpu::gemm_packed(g.m, frame.read(s.in[0]), g.lda, *g.packed, out, std::max<int64_t>(1, g.n),
                         g.alpha, g.beta, g.bias);
        return;
      }
      cpu::gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, frame.read(s.in[0]), g.lda,
                frame.read(s.in[1]), g.ldb, g.beta, out, std::max<int64_t>(1, g.n));
      return;
    }
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
      cpu::binary(binary_op(s.op), frame.read(s.in[0]), frame.read(s.in[1]), out, s.broadcast);
      return;
    case OpKind::kRelu:
      cpu::relu(frame.read(s.in[0]), out, s.elements);
      return;
    case OpKind::kSigmoid:
      cpu::sigmoid(frame.read(s.in[0]), out, s.elements);
      return;
    case OpKind::kTanh:
      cpu::tanh(frame.read(s.in[0]), out, s.elements);
      return;
    case OpKind::kSoftmax:
      cpu::softmax_strided(frame.read(s.in[0]), out, s.softmax.outer, s.softmax.n, s.softmax.inner);
      return;
    case OpKind::kIdentity:
    case OpKind::kFlatten:
    case OpKind::kReshape:
      COPROC_CHECK(false && "view operators make no kernel call");
  }
}

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

void Session::FreeDeleter::operator()(void* p) const { std::free(p); }

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  COPROC_CHECK(model_ != nullptr);
}

Session::~Session() = default;

Result<const Plan*> Session::prepare(std::span<const Shape> input_shapes) {
  // Shapes come off the wire: a rank outside the array would make comparing them read past it.
  for (std::size_t i = 0; i < input_shapes.size(); ++i) {
    if (input_shapes[i].rank < 0 || input_shapes[i].rank > kMaxRank) {
      return invalid(fmt::format("input {} has rank {}; ranks go from 0 to {}", i,
                                 input_shapes[i].rank, kMaxRank));
    }
  }
  for (const auto& plan : plans_) {
    if (std::equal(plan->input_shapes_.begin(), plan->input_shapes_.end(), input_shapes.begin(),
                   input_shapes.end())) {
      return static_cast<const Plan*>(plan.get());
    }
  }
  auto built = detail::Planner::build(*model_, input_shapes);
  if (!built) return built.error();
  std::unique_ptr<Plan> plan = std::move(built).value();
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
  plans_.push_back(std::move(plan));
  return static_cast<const Plan*>(plans_.back().get());
}

Status Session::run(const Plan& plan, std::span<const void* const> inputs,
                    std::span<void* const> outputs) {
  if (inputs.size() != plan.num_inputs() || outputs.size() != plan.num_outputs()) {
    return invalid(fmt::format("the plan takes {} inputs and {} outputs, got {} and {}",
                               plan.num_inputs(), plan.num_outputs(), inputs.size(),
                               outputs.size()));
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == nullptr && plan.input_shape(i).elements() > 0) {
      return invalid(fmt::format("input {} ('{}') is null", i, model_->inputs()[i].name));
    }
  }
  for (std::size_t j = 0; j < outputs.size(); ++j) {
    if (outputs[j] == nullptr && plan.output_bytes(j) > 0) {
      return invalid(fmt::format("output {} ('{}') is null", j, model_->outputs()[j].name));
    }
  }
  // A plan from another session would index past our scratch.
  COPROC_CHECK(plan.scratch_bytes_ <= scratch_capacity_bytes_);
  const Frame frame(inputs, outputs, scratch_.get());
  for (const Step& step : plan.steps_) execute(step, frame);
  for (const detail::OutputCopy& copy : plan.copies_) {
    if (copy.bytes > 0) std::memcpy(outputs[copy.output], frame.read(copy.src), copy.bytes);
  }
  return {};
}

}  // namespace coproc::runtime
