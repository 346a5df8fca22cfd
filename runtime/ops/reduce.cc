// Reductions: ReduceSum, ReduceSumSquare, ReduceMean, ReduceMax, ArgMax, and LayerNormalization.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <type_traits>

#include "coproc/kernels/cpu.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

namespace cpu = kernels::cpu;

// ---------------------------------------------------------------- ReduceSum, Mean, Max, ...

enum class Reduction : uint8_t { kSum, kSumSquare, kMean, kMax };

// From these opsets the axes are input 1 (a value operand) instead of the attribute "axes", and
// the attribute noop_with_empty_axes exists.
constexpr int64_t kSumAxesInputOpset = 13;
constexpr int64_t kAxesInputOpset = 18;  // ReduceMean, ReduceMax, ReduceSumSquare

cpu::ReduceOp kernel_op(Reduction r) {
  switch (r) {
    case Reduction::kSumSquare:
      return cpu::ReduceOp::kSumSquare;
    case Reduction::kMax:
      return cpu::ReduceOp::kMax;
    case Reduction::kSum:
    case Reduction::kMean:
      break;
  }
  return cpu::ReduceOp::kSum;
}

// A reduction reshaped for the kernels: dims of size 1 dropped, then adjacent dims that are both
// reduced or both kept merged, so the merged dims alternate. The innermost one or two are a
// single kernel call: a row reduction of x [a, b] into a outputs when the last merged dim is
// reduced, a column reduction of x [a, b] into b outputs when it is kept. An odometer over the
// other merged dims makes the calls; the output advances only along kept dims.
struct ReduceLayout {
  bool rows = true;
  int64_t a = 1;
  int64_t b = 1;
  int32_t outer_rank = 0;
  std::array<int64_t, kMaxRank> outer_dims{};
  std::array<int64_t, kMaxRank> x_strides{};
  std::array<int64_t, kMaxRank> y_strides{};
  int64_t out_elements = 1;
  int64_t count = 1;  // input elements per output element

  template <class Call>
  void for_each_call(Call&& call) const {
    int64_t calls = 1;
    for (int32_t d = 0; d < outer_rank; ++d) calls *= outer_dims[static_cast<std::size_t>(d)];
    std::array<int64_t, kMaxRank> idx{};
    int64_t x_off = 0;
    int64_t y_off = 0;
    for (int64_t c = 0; c < calls; ++c) {
      call(x_off, y_off);
      for (int32_t d = outer_rank - 1; d >= 0; --d) {
        const auto ud = static_cast<std::size_t>(d);
        x_off += x_strides[ud];
        y_off += y_strides[ud];
        if (++idx[ud] < outer_dims[ud]) break;
        x_off -= x_strides[ud] * idx[ud];
        y_off -= y_strides[ud] * idx[ud];
        idx[ud] = 0;
      }
    }
  }
};

ReduceLayout make_reduce_layout(const Shape& x, const std::array<bool, kMaxRank>& reduced) {
  ReduceLayout l;
  std::array<int64_t, kMaxRank> sizes{};
  std::array<bool, kMaxRank> kinds{};
  int32_t m = 0;
  for (int32_t d = 0; d < x.rank; ++d) {
    const auto ud = static_cast<std::size_t>(d);
    const int64_t dim = x.dims[ud];
    (reduced[ud] ? l.count : l.out_elements) *= dim;
    if (dim == 1) continue;
    if (m > 0 && kinds[static_cast<std::size_t>(m - 1)] == reduced[ud]) {
      sizes[static_cast<std::size_t>(m - 1)] *= dim;
      continue;
    }
    sizes[static_cast<std::size_t>(m)] = dim;
    kinds[static_cast<std::size_t>(m)] = reduced[ud];
    ++m;
  }
  // Strides of the merged dims: x is dense; y advances along kept dims only.
  std::array<int64_t, kMaxRank> xs{};
  std::array<int64_t, kMaxRank> ys{};
  int64_t x_stride = 1;
  int64_t y_stride = 1;
  for (int32_t g = m - 1; g >= 0; --g) {
    const auto ug = static_cast<std::size_t>(g);
    xs[ug] = x_stride;
    x_stride *= sizes[ug];
    ys[ug] = kinds[ug] ? 0 : y_stride;
    if (!kinds[ug]) y_stride *= sizes[ug];
  }
  int32_t inner = 0;  // merged dims the kernel call covers
  if (m > 0) {
    const auto last = static_cast<std::size_t>(m - 1);
    l.rows = kinds[last];
    inner = m >= 2 ? 2 : 1;
    l.a = m >= 2 ? sizes[last - 1] : 1;
    l.b = sizes[last];
  }
  l.outer_rank = m - inner;
  for (int32_t g = 0; g < l.outer_rank; ++g) {
    const auto ug = static_cast<std::size_t>(g);
    l.outer_dims[ug] = sizes[ug];
    l.x_strides[ug] = xs[ug];
    l.y_strides[ug] = ys[ug];
  }
  return l;
}

// The integer reductions (the float ones are the CPU kernels'): sums wrap around, as numpy's do.
template <class T>
T combine(cpu::ReduceOp op, T acc, T v) {
  switch (op) {
    case cpu::ReduceOp::kSum:
      return wrapping(std::plus<>(), acc, v);
    case cpu::ReduceOp::kSumSquare:
      return wrapping(std::plus<>(), acc, wrapping(std::multiplies<>(), v, v));
    case cpu::ReduceOp::kMax:
      return std::max(acc, v);
  }
  return acc;
}

// One kernel call of a ReduceLayout on x [a, b]: along rows into y [a] when `rows`, else along
// columns into y [b]. Floats run on the CPU kernels; integers here, with combine().
template <class T>
void reduce_block(cpu::ReduceOp op, bool rows, const T* x, int64_t a, int64_t b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (rows) {
      cpu::reduce_rows(op, x, a, b, y);
    } else {
      cpu::reduce_cols(op, x, a, b, y);
    }
  } else if (rows) {
    for (int64_t r = 0; r < a; ++r) {
      T acc = y[r];
      for (int64_t j = 0; j < b; ++j) acc = combine(op, acc, x[r * b + j]);
      y[r] = acc;
    }
  } else {
    for (int64_t j = 0; j < a; ++j) {
      for (int64_t c = 0; c < b; ++c) y[c] = combine(op, y[c], x[j * b + c]);
    }
  }
}

// Where every reduction starts. A reduction over no values (a reduced dim of 0) ends there too:
// 0 for the sums, -inf (the lowest integer) for the max, as ONNX says; NaN for the mean, which
// ONNX leaves undefined.
template <class T>
T start_value(Reduction r, bool empty) {
  if constexpr (std::is_same_v<T, float>) {
    if (r == Reduction::kMean && empty) return std::numeric_limits<float>::quiet_NaN();
    if (r != Reduction::kMax && empty) return 0.0f;
    return cpu::reduce_identity(kernel_op(r));
  } else {
    return r == Reduction::kMax ? std::numeric_limits<T>::lowest() : T{0};
  }
}

template <class T>
std::unique_ptr<Kernel> reduce_kernel(Reduction r, const ReduceLayout& l) {
  const cpu::ReduceOp op = kernel_op(r);
  const T start = start_value<T>(r, l.count == 0);
  // Integer ReduceMean is refused at plan time; only a float mean divides.
  const bool mean = std::is_same_v<T, float> && r == Reduction::kMean;
  return make_kernel([mean, op, l, start](const KernelIO& io) {
    const T* x = io.input<T>(0);
    T* y = io.output<T>(0);
    std::fill(y, y + l.out_elements, start);
    if (l.count == 0 || l.out_elements == 0) return;
    l.for_each_call([&](int64_t x_off, int64_t y_off) {
      reduce_block<T>(op, l.rows, x + x_off, l.a, l.b, y + y_off);
    });
    if (mean) {
      const auto count = static_cast<T>(l.count);
      for (int64_t i = 0; i < l.out_elements; ++i) y[i] /= count;
    }
  });
}

// The axes to reduce: input 1 from axes_input_opset on, else the attribute; none listed means
// all of them, or none with noop_with_empty_axes (which exists from that opset).
Result<std::array<bool, kMaxRank>> reduced_axes(const PlanContext& ctx, int64_t axes_input_opset) {
  const int32_t rank = ctx.input(0).shape.rank;
  const bool from_input = ctx.node.opset >= axes_input_opset;
  std::vector<int64_t> axes;
  if (!from_input) {
    if (const Attribute* attr = ctx.node.attribute("axes"); attr != nullptr) axes = attr->ints;
  } else if (ctx.has_input(1)) {
    if (ctx.input(1).shape.rank != 1) {
      return ctx.fail(fmt::format("axes must be 1-D, not {}", ctx.input(1).shape.to_string()));
    }
    axes = ctx.ints(1);
  }
  std::array<bool, kMaxRank> reduced{};
  if (axes.empty()) {
    const bool noop = from_input && ctx.node.int_attr("noop_with_empty_axes", 0) != 0;
    std::fill(reduced.begin(), reduced.begin() + rank, !noop);
    return reduced;
  }
  for (const int64_t axis : axes) {
    auto normalised = ctx.axis(axis, rank);
    if (!normalised) return normalised.error();
    bool& r = reduced[static_cast<std::size_t>(normalised.value())];
    if (r) return ctx.fail(fmt::format("axis {} is listed twice", axis));
    r = true;
  }
  return reduced;
}

// The device-neutral reduction of x over the marked dims: one output element per kept index.
ReduceCall reduce_call(ReduceOp op, DType dtype, const Shape& x,
                       const std::array<bool, kMaxRank>& reduced) {
  ReduceCall call;
  call.op = op;
  call.dtype = dtype;
  const Strides strides = dense_strides(x);
  for (int32_t d = 0; d < x.rank; ++d) {
    if (reduced[at(d)]) {
      call.reduced_dims[at(call.reduced_rank)] = x.dims[at(d)];
      call.reduced_strides[at(call.reduced_rank++)] = strides[at(d)];
    } else {
      call.out_dims[at(call.out_rank)] = x.dims[at(d)];
      call.in_strides[at(call.out_rank++)] = strides[at(d)];
    }
  }
  return call;
}

ReduceOp reduce_op(Reduction r) {
  switch (r) {
    case Reduction::kSumSquare:
      return ReduceOp::kSumSquare;
    case Reduction::kMean:
      return ReduceOp::kMean;
    case Reduction::kMax:
      return ReduceOp::kMax;
    case Reduction::kSum:
      break;
  }
  return ReduceOp::kSum;
}

template <Reduction kReduction, int64_t kAxesInputOpset>
Status plan_reduce(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  const bool float_only = kReduction == Reduction::kMean;
  if (!(is_float(x.dtype) || (!float_only && is_integer(x.dtype)))) {
    return ctx.unsupported(fmt::format("{} data is not supported", dtype_name(x.dtype)));
  }
  auto reduced = reduced_axes(ctx, kAxesInputOpset);
  if (!reduced) return reduced.error();
  const bool keepdims = ctx.node.int_attr("keepdims", 1) != 0;
  Shape out;
  for (int32_t d = 0; d < x.shape.rank; ++d) {
    const auto ud = static_cast<std::size_t>(d);
    if (!(*reduced)[ud]) {
      out.dims[static_cast<std::size_t>(out.rank++)] = x.shape.dims[ud];
    } else if (keepdims) {
      out.dims[static_cast<std::size_t>(out.rank++)] = 1;
    }
  }
  ctx.output(0) = {x.dtype, out};
  const ReduceLayout layout = make_reduce_layout(x.shape, *reduced);
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(x.dtype, [&]<class T>() {
    if constexpr (!std::is_same_v<T, uint8_t>) kernel = reduce_kernel<T>(kReduction, layout);
  });
  return ctx.choose(std::move(kernel),
                    [&] { return reduce_call(reduce_op(kReduction), x.dtype, x.shape, *reduced); });
}

// ---------------------------------------------------------------- ArgMax

// Whether v replaces best as the maximum seen so far. NaN is the largest value, as in numpy's
// argmax: the first NaN wins, or the last one with select_last_index.
template <class T>
bool beats(T v, T best, bool last) {
  if constexpr (std::is_same_v<T, float>) {
    if (best != best) return last && v != v;
    if (v != v) return true;
  }
  return last ? v >= best : v > best;
}

Status plan_argmax(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  if (!is_float(x.dtype) && !is_integer(x.dtype)) {
    return ctx.unsupported(fmt::format("{} data is not supported", dtype_name(x.dtype)));
  }
  auto axis = ctx.axis(ctx.node.int_attr("axis", 0), x.shape.rank);
  if (!axis) return axis.error();
  const int32_t a = axis.value();
  const int64_t n = x.shape.dims[static_cast<std::size_t>(a)];
  if (n == 0) return ctx.fail("ArgMax over an empty axis has no answer");
  const bool keepdims = ctx.node.int_attr("keepdims", 1) != 0;
  const bool last = ctx.node.int_attr("select_last_index", 0) != 0;
  Shape out = x.shape;
  if (keepdims) {
    out.dims[static_cast<std::size_t>(a)] = 1;
  } else {
    std::copy(out.dims.begin() + a + 1, out.dims.end(), out.dims.begin() + a);
    out.dims[static_cast<std::size_t>(--out.rank)] = 0;
  }
  ctx.output(0) = {DType::kInt64, out};
  const int64_t outer = product(x.shape, 0, a);
  const int64_t inner = product(x.shape, a + 1, x.shape.rank);
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(x.dtype, [&]<class T>() {
    if constexpr (!std::is_same_v<T, uint8_t>) {
      kernel = make_kernel([outer, n, inner, last](const KernelIO& io) {
        const T* data = io.input<T>(0);
        auto* result = io.output<int64_t>(0);
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t i = 0; i < inner; ++i) {
            const T* column = data + o * n * inner + i;
            T best = column[0];
            int64_t at = 0;
            for (int64_t j = 1; j < n; ++j) {
              const T v = column[j * inner];
              if (beats(v, best, last)) {
                best = v;
                at = j;
              }
            }
            result[o * inner + i] = at;
          }
        }
      });
    }
  });
  std::array<bool, kMaxRank> reduced{};
  reduced[at(a)] = true;
  return ctx.choose(std::move(kernel), [&] {
    return reduce_call(last ? ReduceOp::kArgMaxLast : ReduceOp::kArgMax, x.dtype, x.shape, reduced);
  });
}

// ---------------------------------------------------------------- LayerNormalization

// ONNX's stash_type for float32: the only precision the mean and deviation are computed in here
// (in double, which is float32's computation done more exactly).
constexpr int64_t kStashFloat32 = 1;
constexpr float kDefaultEpsilon = 1e-5f;

// Scale or B is "per normalised element" when it holds exactly the normalised dims' elements and
// broadcasts to X along them alone (its dims aligned with X's leading ones are all 1): then
// element i of every row reads element i of it.
bool per_normalised_element(const Shape& t, const Shape& x, int32_t axis, int64_t n) {
  if (t.elements() != n || t.rank > x.rank) return false;
  for (int32_t d = 0; d < t.rank; ++d) {
    const int32_t xd = d + (x.rank - t.rank);
    if (xd < axis && t.dims[static_cast<std::size_t>(d)] != 1) return false;
  }
  return true;
}

// The host's LayerNormalization.
struct HostLayerNorm {
  int64_t rows = 0;
  int64_t n = 0;
  float epsilon = kDefaultEpsilon;
  bool fuse_scale = false;  // scale (and bias) applied inside the kernel's last pass
  bool fuse_bias = false;
  bool has_bias = false;
  bool want_mean = false;
  bool want_inv_std_dev = false;
  cpu::Broadcast scale_layout;  // when not fused: Y = Y * Scale, then Y = Y + B, broadcasting
  cpu::Broadcast bias_layout;
};

Status plan_layer_norm(PlanContext& ctx) {
  for (std::size_t k = 0; k < 3; ++k) {
    if (ctx.has_input(k) && ctx.input(k).dtype != DType::kFloat32) {
      return ctx.unsupported(fmt::format("input {} is {}; only float32 is supported", k,
                                         dtype_name(ctx.input(k).dtype)));
    }
  }
  if (ctx.node.int_attr("stash_type", kStashFloat32) != kStashFloat32) {
    return ctx.unsupported(fmt::format("stash_type {}: only float32 (1) is supported",
                                       ctx.node.int_attr("stash_type", kStashFloat32)));
  }
  const Shape& x = ctx.input(0).shape;
  auto axis = ctx.axis(ctx.node.int_attr("axis", -1), x.rank);
  if (!axis) return axis.error();
  const int32_t a = axis.value();
  HostLayerNorm call;
  call.rows = product(x, 0, a);
  call.n = product(x, a, x.rank);
  call.epsilon = ctx.node.float_attr("epsilon", kDefaultEpsilon);
  call.has_bias = ctx.has_input(2);
  // Scale and B broadcast to X one way: the result must have X's shape.
  for (std::size_t k = 1; k < (call.has_bias ? 3u : 2u); ++k) {
    const Shape& t = ctx.input(k).shape;
    cpu::Broadcast& layout = k == 1 ? call.scale_layout : call.bias_layout;
    if (!cpu::make_broadcast(x.view(), t.view(), &layout) ||
        !(Shape::of({layout.out_dims, static_cast<std::size_t>(layout.out_rank)}) == x)) {
      return ctx.fail(fmt::format("{} {} does not broadcast to X {}", k == 1 ? "Scale" : "B",
                                  t.to_string(), x.to_string()));
    }
  }
  // The kernel applies the scale before the bias, so the bias is fused only with the scale.
  call.fuse_scale = per_normalised_element(ctx.input(1).shape, x, a, call.n);
  call.fuse_bias =
      call.fuse_scale && call.has_bias && per_normalised_element(ctx.input(2).shape, x, a, call.n);
  ctx.output(0) = {DType::kFloat32, x};
  // Mean and InvStdDev: X's leading dims, then 1 for every normalised one.
  Shape stats = x;
  std::fill(stats.dims.begin() + a, stats.dims.begin() + x.rank, 1);
  call.want_mean = ctx.node.has_output(1);
  call.want_inv_std_dev = ctx.node.has_output(2);
  if (call.want_mean) ctx.output(1) = {DType::kFloat32, stats};
  if (call.want_inv_std_dev) ctx.output(2) = {DType::kFloat32, stats};
  const LayerNormCall device_call{call.rows, call.n, call.epsilon,
                                  call.fuse_scale && (!call.has_bias || call.fuse_bias)};
  auto host = make_kernel([call](const KernelIO& io) {
    const float* scale = io.input<float>(1);
    const float* bias = call.has_bias ? io.input<float>(2) : nullptr;
    float* y = io.output<float>(0);
    cpu::layer_norm(io.input<float>(0), call.rows, call.n, call.fuse_scale ? scale : nullptr,
                    call.fuse_bias ? bias : nullptr, call.epsilon, y,
                    call.want_mean ? io.output<float>(1) : nullptr,
                    call.want_inv_std_dev ? io.output<float>(2) : nullptr);
    if (!call.fuse_scale) cpu::binary(cpu::BinaryOp::kMul, y, scale, y, call.scale_layout);
    if (call.has_bias && !call.fuse_bias) {
      cpu::binary(cpu::BinaryOp::kAdd, y, bias, y, call.bias_layout);
    }
  });
  return ctx.choose(std::move(host), device_call);
}

constexpr uint32_t kAxesOperand = 0b10;

constexpr OpDef kOps[] = {
    {"ReduceSum", plan_reduce<Reduction::kSum, kSumAxesInputOpset>, Aliasing::kNone, kAxesOperand},
    {"ReduceSumSquare", plan_reduce<Reduction::kSumSquare, kAxesInputOpset>, Aliasing::kNone,
     kAxesOperand},
    {"ReduceMean", plan_reduce<Reduction::kMean, kAxesInputOpset>, Aliasing::kNone, kAxesOperand},
    {"ReduceMax", plan_reduce<Reduction::kMax, kAxesInputOpset>, Aliasing::kNone, kAxesOperand},
    {"ArgMax", plan_argmax},
    // Not in place: with a Scale that is not fused, the kernel would write Y over it before the
    // multiplication reads it.
    {"LayerNormalization", plan_layer_norm},
};

}  // namespace

std::span<const OpDef> reduce_ops() { return kOps; }

}  // namespace coproc::runtime::detail
