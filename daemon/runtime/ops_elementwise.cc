// Elementwise operators: arithmetic with numpy broadcasting, and the unary math functions.
#include <fmt/format.h>

#include <cmath>

#include "coproc/kernels/cpu.h"
#include "runtime/ops.h"

namespace coproc::runtime::detail {
namespace {

namespace cpu = kernels::cpu;

// ---------------------------------------------------------------- binary arithmetic

template <class T>
T apply(cpu::BinaryOp op, T a, T b) {
  switch (op) {
    case cpu::BinaryOp::kAdd:
      return a + b;
    case cpu::BinaryOp::kSub:
      return a - b;
    case cpu::BinaryOp::kMul:
      return a * b;
    case cpu::BinaryOp::kDiv:
      // Integer division by zero is undefined in C++; ONNX leaves it undefined too. Data from a
      // client must not crash the daemon, so it yields 0.
      if constexpr (std::is_integral_v<T>) {
        if (b == 0) return 0;
        if constexpr (std::is_signed_v<T>) {
          if (a == std::numeric_limits<T>::min() && b == -1) return a;
        }
      }
      return a / b;
  }
  return a;
}

template <cpu::BinaryOp kOp>
Result<std::unique_ptr<Kernel>> plan_arithmetic(PlanContext& ctx) {
  const TensorInfo& a = ctx.input(0);
  const TensorInfo& b = ctx.input(1);
  if (a.dtype != b.dtype) {
    return ctx.fail(fmt::format("operand types differ: {} and {}", dtype_name(a.dtype),
                                dtype_name(b.dtype)));
  }
  if (a.dtype == DType::kFloat32) {
    cpu::Broadcast layout;
    if (!cpu::make_broadcast(a.shape.view(), b.shape.view(), &layout)) {
      return ctx.fail(fmt::format("shapes {} and {} do not broadcast", a.shape.to_string(),
                                  b.shape.to_string()));
    }
    ctx.output(0) = {DType::kFloat32,
                     Shape::of({layout.out_dims, static_cast<std::size_t>(layout.out_rank)})};
    return make_kernel([layout](const KernelIO& io) {
      cpu::binary(kOp, io.input<float>(0), io.input<float>(1), io.output<float>(0), layout);
    });
  }
  if (!is_integer(a.dtype)) {
    return ctx.unsupported(fmt::format("{} operands are not supported", dtype_name(a.dtype)));
  }
  MultiBroadcast layout;
  const Shape shapes[2] = {a.shape, b.shape};
  if (!make_multi_broadcast(shapes, &layout)) {
    return ctx.fail(fmt::format("shapes {} and {} do not broadcast", a.shape.to_string(),
                                b.shape.to_string()));
  }
  ctx.output(0) = {a.dtype, layout.out};
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(a.dtype, [&]<class T>() {
    if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>) {
      kernel = make_kernel([layout](const KernelIO& io) {
        const T* x = io.input<T>(0);
        const T* y = io.input<T>(1);
        T* out = io.output<T>(0);
        for_each_broadcast(layout, [&](int64_t i, const std::array<int64_t, 4>& off) {
          out[i] = apply<T>(kOp, x[off[0]], y[off[1]]);
        });
      });
    }
  });
  return kernel;
}

// ---------------------------------------------------------------- unary float functions

using UnaryFn = void (*)(const float* x, float* y, int64_t n);

template <UnaryFn kFn>
Result<std::unique_ptr<Kernel>> plan_unary_float(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  if (x.dtype != DType::kFloat32) {
    return ctx.unsupported(fmt::format("{} input is not supported", dtype_name(x.dtype)));
  }
  ctx.output(0) = {DType::kFloat32, x.shape};
  const int64_t n = x.shape.elements();
  return make_kernel(
      [n](const KernelIO& io) { kFn(io.input<float>(0), io.output<float>(0), n); });
}

constexpr OpDef kOps[] = {
    {"Add", plan_arithmetic<cpu::BinaryOp::kAdd>, Aliasing::kElementwise},
    {"Sub", plan_arithmetic<cpu::BinaryOp::kSub>, Aliasing::kElementwise},
    {"Mul", plan_arithmetic<cpu::BinaryOp::kMul>, Aliasing::kElementwise},
    {"Div", plan_arithmetic<cpu::BinaryOp::kDiv>, Aliasing::kElementwise},
    {"Relu", plan_unary_float<cpu::relu>, Aliasing::kElementwise},
    {"Sigmoid", plan_unary_float<cpu::sigmoid>, Aliasing::kElementwise},
    {"Tanh", plan_unary_float<cpu::tanh>, Aliasing::kElementwise},
};

}  // namespace

std::span<const OpDef> elementwise_ops() { return kOps; }

}  // namespace coproc::runtime::detail
