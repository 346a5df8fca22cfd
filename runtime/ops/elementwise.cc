// Elementwise operators: arithmetic with numpy broadcasting, Pow, Equal, Where, and the unary
// math functions.
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>

#include "coproc/kernels/cpu.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

namespace cpu = kernels::cpu;

template <class T>
constexpr bool kIsInteger = std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>;

Error broadcast_failure(const PlanContext& ctx, std::span<const Shape> shapes) {
  std::string list;
  for (const Shape& s : shapes) list += (list.empty() ? "" : ", ") + s.to_string();
  return ctx.fail(fmt::format("shapes {} do not broadcast", list));
}

// Binary operators take both operands of one type (ONNX's T).
Status check_same_dtype(const PlanContext& ctx, const TensorInfo& a, const TensorInfo& b) {
  if (a.dtype == b.dtype) return {};
  return ctx.fail(
      fmt::format("operand types differ: {} and {}", dtype_name(a.dtype), dtype_name(b.dtype)));
}

// ---------------------------------------------------------------- binary arithmetic

// Integer arithmetic wraps around, as numpy's does (wrapping, ops.h).
template <class T>
T apply_integer(cpu::BinaryOp op, T a, T b) {
  switch (op) {
    case cpu::BinaryOp::kAdd:
      return wrapping(std::plus<>(), a, b);
    case cpu::BinaryOp::kSub:
      return wrapping(std::minus<>(), a, b);
    case cpu::BinaryOp::kMul:
      return wrapping(std::multiplies<>(), a, b);
    case cpu::BinaryOp::kDiv:
      // Division truncates toward zero (ONNX Runtime's, and the reference's cast of numpy's
      // quotient). Division by zero is undefined in C++ and in ONNX: it yields 0 rather than
      // crashing the daemon. min / -1 overflows: it wraps to min.
      if (b == 0) return 0;
      if (a == std::numeric_limits<T>::min() && b == -1) return a;
      return a / b;
  }
  return a;
}

constexpr ElementwiseOp elementwise_op(cpu::BinaryOp op) {
  switch (op) {
    case cpu::BinaryOp::kAdd:
      return ElementwiseOp::kAdd;
    case cpu::BinaryOp::kSub:
      return ElementwiseOp::kSub;
    case cpu::BinaryOp::kMul:
      return ElementwiseOp::kMul;
    case cpu::BinaryOp::kDiv:
      return ElementwiseOp::kDiv;
  }
  return ElementwiseOp::kAdd;
}

template <cpu::BinaryOp kOp>
Status plan_arithmetic(PlanContext& ctx) {
  const TensorInfo& a = ctx.input(0);
  const TensorInfo& b = ctx.input(1);
  if (Status ok = check_same_dtype(ctx, a, b); !ok) return ok.error();
  const Shape shapes[2] = {a.shape, b.shape};
  if (a.dtype == DType::kFloat32) {
    cpu::Broadcast layout;
    if (!cpu::make_broadcast(a.shape.view(), b.shape.view(), &layout)) {
      return broadcast_failure(ctx, shapes);
    }
    ctx.output(0) = {DType::kFloat32,
                     Shape::of({layout.out_dims, static_cast<std::size_t>(layout.out_rank)})};
    auto host = make_kernel([layout](const KernelIO& io) {
      cpu::binary(kOp, io.input<float>(0), io.input<float>(1), io.output<float>(0), layout);
    });
    return choose_elementwise(ctx, std::move(host), elementwise_op(kOp), a.dtype,
                              ctx.output(0).shape);
  }
  if (!is_integer(a.dtype)) {
    return ctx.unsupported(fmt::format("{} operands are not supported", dtype_name(a.dtype)));
  }
  MultiBroadcast layout;
  if (!make_multi_broadcast(shapes, &layout)) return broadcast_failure(ctx, shapes);
  ctx.output(0) = {a.dtype, layout.out};
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(a.dtype, [&]<class T>() {
    if constexpr (kIsInteger<T>) {
      kernel = make_kernel([layout](const KernelIO& io) {
        const T* x = io.input<T>(0);
        const T* y = io.input<T>(1);
        T* out = io.output<T>(0);
        for_each_broadcast(layout, [&](int64_t i, const std::array<int64_t, 4>& off) {
          out[i] = apply_integer<T>(kOp, x[off[0]], y[off[1]]);
        });
      });
    }
  });
  return choose_elementwise(ctx, std::move(kernel), elementwise_op(kOp), a.dtype, layout.out);
}

// ---------------------------------------------------------------- Pow

// An integer to an integer power, exactly, by squaring; wraps around on overflow (unsigned
// arithmetic, as in apply_integer). A negative power of |base| > 1 is a fraction that truncates
// to 0; so is 0 to a negative power, which is a division by zero.
template <class T>
T integer_power(T base, int64_t exponent) {
  if (exponent < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exponent & 1) != 0 ? -1 : 1;
    return 0;
  }
  using U = std::make_unsigned_t<T>;
  U result = 1;
  auto factor = static_cast<U>(base);
  for (; exponent > 0; exponent >>= 1) {
    if ((exponent & 1) != 0) result *= factor;
    factor *= factor;
  }
  return static_cast<T>(result);
}

// A double to T as a cast truncates, but defined for every value: NaN is 0, values past T's
// range saturate.
template <class T>
T truncate_to(double v) {
  // T's minimum is a power of two, so both bounds are exact doubles.
  constexpr double kLow = static_cast<double>(std::numeric_limits<T>::min());
  constexpr double kHigh = -kLow;  // one past T's maximum
  if (v != v) return 0;
  if (v <= kLow) return std::numeric_limits<T>::min();
  if (v >= kHigh) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

// The ONNX Pow of every (base, exponent) type pair we compute on; the result has the base's type.
// A float to a float power is powf (as numpy's float32 power). Integer exponents of a float run
// in double so that they are exact (an int64 exponent need not be a float), and float exponents
// of an integer run in double and truncate (the reference's cast of numpy's float result).
template <class T, class E>
T power(T base, E exponent) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<E, float>) {
    return std::pow(base, exponent);
  } else if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
  } else if constexpr (std::is_same_v<E, float>) {
    return truncate_to<T>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
  } else {
    return integer_power<T>(base, static_cast<int64_t>(exponent));
  }
}

// A float tensor to one float power: the common case (x^2 of a variance, x^3 of a tanh GELU), with
// squares and cubes as multiplications (x * x is powf(x, 2) exactly; x * x * x rounds twice, so
// it is within about 1 ulp of x^3) and a flat loop for any other power.
std::unique_ptr<Kernel> float_power_of_scalar(int64_t n) {
  return make_kernel([n](const KernelIO& io) {
    const float* x = io.input<float>(0);
    const float e = io.input<float>(1)[0];
    float* out = io.output<float>(0);
    if (e == 2.0f) {
      for (int64_t i = 0; i < n; ++i) out[i] = x[i] * x[i];
    } else if (e == 3.0f) {
      for (int64_t i = 0; i < n; ++i) out[i] = x[i] * x[i] * x[i];
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = std::pow(x[i], e);
    }
  });
}

bool is_computed_number(DType dtype) { return is_float(dtype) || is_integer(dtype); }

Status plan_pow(PlanContext& ctx) {
  const TensorInfo& base = ctx.input(0);
  const TensorInfo& exponent = ctx.input(1);
  if (!is_computed_number(base.dtype) || !is_computed_number(exponent.dtype)) {
    return ctx.unsupported(fmt::format("{} to a {} power is not supported", dtype_name(base.dtype),
                                       dtype_name(exponent.dtype)));
  }
  const Shape shapes[2] = {base.shape, exponent.shape};
  MultiBroadcast layout;
  if (!make_multi_broadcast(shapes, &layout)) return broadcast_failure(ctx, shapes);
  ctx.output(0) = {base.dtype, layout.out};
  const int64_t n = layout.out.elements();
  if (base.dtype == DType::kFloat32 && exponent.dtype == DType::kFloat32 &&
      exponent.shape.elements() == 1 && base.shape.elements() == n) {
    return choose_elementwise(ctx, float_power_of_scalar(n), ElementwiseOp::kPow, base.dtype,
                              layout.out);
  }
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(base.dtype, [&]<class T>() {
    dispatch_dtype(exponent.dtype, [&]<class E>() {
      if constexpr (!std::is_same_v<T, uint8_t> && !std::is_same_v<E, uint8_t>) {
        kernel = make_kernel([layout](const KernelIO& io) {
          const T* x = io.input<T>(0);
          const E* y = io.input<E>(1);
          T* out = io.output<T>(0);
          for_each_broadcast(layout, [&](int64_t i, const std::array<int64_t, 4>& off) {
            out[i] = power<T, E>(x[off[0]], y[off[1]]);
          });
        });
      }
    });
  });
  return choose_elementwise(ctx, std::move(kernel), ElementwiseOp::kPow, base.dtype, layout.out);
}

// ---------------------------------------------------------------- Equal and Where

// Bools are bytes: any nonzero byte is true (see dispatch_dtype).
template <class T>
bool equal(T a, T b) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return (a != 0) == (b != 0);
  } else {
    return a == b;  // floats: IEEE, so NaN equals nothing and -0 equals +0, as in numpy
  }
}

Status plan_equal(PlanContext& ctx) {
  const TensorInfo& a = ctx.input(0);
  const TensorInfo& b = ctx.input(1);
  if (Status ok = check_same_dtype(ctx, a, b); !ok) return ok.error();
  const Shape shapes[2] = {a.shape, b.shape};
  MultiBroadcast layout;
  if (!make_multi_broadcast(shapes, &layout)) return broadcast_failure(ctx, shapes);
  ctx.output(0) = {DType::kBool, layout.out};
  std::unique_ptr<Kernel> kernel;
  const bool known = dispatch_dtype(a.dtype, [&]<class T>() {
    kernel = make_kernel([layout](const KernelIO& io) {
      const T* x = io.input<T>(0);
      const T* y = io.input<T>(1);
      auto* out = io.output<uint8_t>(0);
      for_each_broadcast(layout, [&](int64_t i, const std::array<int64_t, 4>& off) {
        out[i] = equal<T>(x[off[0]], y[off[1]]) ? 1 : 0;
      });
    });
  });
  if (!known) return ctx.unsupported(fmt::format("{} operands", dtype_name(a.dtype)));
  return choose_elementwise(ctx, std::move(kernel), ElementwiseOp::kEqual, a.dtype, layout.out);
}

// A value Where copies: bools are normalised to 0 or 1, the only bytes a kernel writes.
template <class T>
T pick(T v) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return v != 0 ? 1 : 0;
  } else {
    return v;
  }
}

Status plan_where(PlanContext& ctx) {
  const TensorInfo& condition = ctx.input(0);
  const TensorInfo& x = ctx.input(1);
  const TensorInfo& y = ctx.input(2);
  if (condition.dtype != DType::kBool) {
    return ctx.fail(fmt::format("the condition is {}, not bool", dtype_name(condition.dtype)));
  }
  if (x.dtype != y.dtype) {
    return ctx.fail(fmt::format("X is {} but Y is {}", dtype_name(x.dtype), dtype_name(y.dtype)));
  }
  const Shape shapes[3] = {condition.shape, x.shape, y.shape};
  MultiBroadcast layout;
  if (!make_multi_broadcast(shapes, &layout)) return broadcast_failure(ctx, shapes);
  ctx.output(0) = {x.dtype, layout.out};
  // Operands with the output's element count have its shape (up to leading 1s): one flat loop.
  const int64_t n = layout.out.elements();
  const bool flat =
      condition.shape.elements() == n && x.shape.elements() == n && y.shape.elements() == n;
  std::unique_ptr<Kernel> kernel;
  const bool known = dispatch_dtype(x.dtype, [&]<class T>() {
    kernel = make_kernel([layout, flat, n](const KernelIO& io) {
      const auto* c = io.input<uint8_t>(0);
      const T* a = io.input<T>(1);
      const T* b = io.input<T>(2);
      T* out = io.output<T>(0);
      if (flat) {
        for (int64_t i = 0; i < n; ++i) out[i] = pick<T>(c[i] != 0 ? a[i] : b[i]);
        return;
      }
      for_each_broadcast(layout, [&](int64_t i, const std::array<int64_t, 4>& off) {
        out[i] = pick<T>(c[off[0]] != 0 ? a[off[1]] : b[off[2]]);
      });
    });
  });
  if (!known) return ctx.unsupported(fmt::format("{} values", dtype_name(x.dtype)));
  return choose_elementwise(ctx, std::move(kernel), ElementwiseOp::kWhere, x.dtype, layout.out);
}

// ---------------------------------------------------------------- unary functions

using UnaryFn = void (*)(const float* x, float* y, int64_t n);

template <UnaryFn kFn, ElementwiseOp kOp>
Status plan_unary_float(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  if (x.dtype != DType::kFloat32) {
    return ctx.unsupported(fmt::format("{} input is not supported", dtype_name(x.dtype)));
  }
  ctx.output(0) = {DType::kFloat32, x.shape};
  const int64_t n = x.shape.elements();
  auto host =
      make_kernel([n](const KernelIO& io) { kFn(io.input<float>(0), io.output<float>(0), n); });
  return choose_elementwise(ctx, std::move(host), kOp, x.dtype, x.shape);
}

Status plan_neg(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  if (x.dtype == DType::kFloat32) return plan_unary_float<cpu::neg, ElementwiseOp::kNeg>(ctx);
  if (!is_integer(x.dtype)) {
    return ctx.unsupported(fmt::format("{} input is not supported", dtype_name(x.dtype)));
  }
  ctx.output(0) = {x.dtype, x.shape};
  const int64_t n = x.shape.elements();
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(x.dtype, [&]<class T>() {
    if constexpr (kIsInteger<T>) {
      kernel = make_kernel([n](const KernelIO& io) {
        using U = std::make_unsigned_t<T>;
        const T* in = io.input<T>(0);
        T* out = io.output<T>(0);
        // On the unsigned type: -min wraps to min, as in numpy, instead of being undefined.
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(U{0} - static_cast<U>(in[i]));
      });
    }
  });
  return choose_elementwise(ctx, std::move(kernel), ElementwiseOp::kNeg, x.dtype, x.shape);
}

constexpr OpDef kOps[] = {
    {"Add", plan_arithmetic<cpu::BinaryOp::kAdd>, Aliasing::kElementwise},
    {"Sub", plan_arithmetic<cpu::BinaryOp::kSub>, Aliasing::kElementwise},
    {"Mul", plan_arithmetic<cpu::BinaryOp::kMul>, Aliasing::kElementwise},
    {"Div", plan_arithmetic<cpu::BinaryOp::kDiv>, Aliasing::kElementwise},
    {"Pow", plan_pow, Aliasing::kElementwise},
    {"Equal", plan_equal, Aliasing::kElementwise},
    {"Where", plan_where, Aliasing::kElementwise},
    {"Neg", plan_neg, Aliasing::kElementwise},
    {"Erf", plan_unary_float<cpu::erf, ElementwiseOp::kErf>, Aliasing::kElementwise},
    {"Exp", plan_unary_float<cpu::exp, ElementwiseOp::kExp>, Aliasing::kElementwise},
    {"Sqrt", plan_unary_float<cpu::sqrt, ElementwiseOp::kSqrt>, Aliasing::kElementwise},
    {"Reciprocal", plan_unary_float<cpu::reciprocal, ElementwiseOp::kReciprocal>,
     Aliasing::kElementwise},
    {"Relu", plan_unary_float<cpu::relu, ElementwiseOp::kRelu>, Aliasing::kElementwise},
    {"Sigmoid", plan_unary_float<cpu::sigmoid, ElementwiseOp::kSigmoid>, Aliasing::kElementwise},
    {"Tanh", plan_unary_float<cpu::tanh, ElementwiseOp::kTanh>, Aliasing::kElementwise},
};

}  // namespace

std::span<const OpDef> elementwise_ops() { return kOps; }

}  // namespace coproc::runtime::detail
