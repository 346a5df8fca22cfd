// Views and data movement: operators that rearrange or select elements without arithmetic, the
// shape queries (Shape, Size, ConstantOfShape), Gather and Cast. The strided copies (Transpose,
// Slice, Concat, Expand) are in ops/copy.cc.
//
// Gather works on element SIZE, not type: one kernel moves float32, int64, int32 and bool alike.
#include "onnx/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

// Squeeze and Unsqueeze took axes as an attribute before opset 13, as an input since.
constexpr int64_t kAxesAsInputOpset = 13;

// ---------------------------------------------------------------- views

Status plan_identity(PlanContext& ctx) {
  ctx.output(0) = ctx.input(0);
  ctx.output(0).value = nullptr;
  return {};  // a view: no kernel
}

Status plan_flatten(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const int64_t axis = ctx.node.int_attr("axis", 1);
  const int64_t a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a > x.rank) {
    return ctx.fail(fmt::format("axis {} is out of range for {}", axis, x.to_string()));
  }
  const auto ai = static_cast<int32_t>(a);
  const int64_t dims[2] = {product(x, 0, ai), product(x, ai, x.rank)};
  ctx.output(0) = {ctx.input(0).dtype, Shape::of(dims)};
  return {};  // a view: no kernel
}

// ONNX Reshape: 0 copies the input's dim at that index (a literal 0 with allowzero), -1 takes
// whatever is left.
Status plan_reshape(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  if (!ctx.has_input(1)) {
    return ctx.unsupported(
        "Reshape-1 (the shape as an attribute, before opset 5) is not supported");
  }
  auto shape_operand = vector_operand(ctx, 1, "the shape");
  if (!shape_operand) return shape_operand.error();
  const std::vector<int64_t>& target = *shape_operand;
  const bool allowzero = ctx.node.int_attr("allowzero", 0) != 0;
  if (target.size() > static_cast<std::size_t>(kMaxRank)) {
    return ctx.unsupported(fmt::format("target rank {} exceeds {}", target.size(), kMaxRank));
  }
  Shape s;
  s.rank = static_cast<int32_t>(target.size());
  int inferred = -1;
  int64_t known = 1;
  for (int32_t d = 0; d < s.rank; ++d) {
    int64_t dim = target[static_cast<std::size_t>(d)];
    if (dim == 0 && !allowzero) {
      if (d >= x.rank) {
        return ctx.fail(fmt::format("shape [{}] copies dim {} of input {}", fmt::join(target, ", "),
                                    d, x.to_string()));
      }
      dim = x.dims[static_cast<std::size_t>(d)];
    }
    if (dim == -1) {
      if (inferred >= 0) return ctx.fail("more than one -1 in the shape");
      inferred = d;
      continue;
    }
    if (dim < 0 || dim > kMaxTensorElements) {
      return ctx.fail(fmt::format("invalid dim {} in the shape", dim));
    }
    s.dims[static_cast<std::size_t>(d)] = dim;
    known *= dim;
    if (known > kMaxTensorElements) {
      return ctx.fail(fmt::format("the shape [{}] has more than {} elements",
                                  fmt::join(target, ", "), kMaxTensorElements));
    }
  }
  const int64_t total = x.elements();
  if (inferred >= 0) {
    if (known == 0 || total % known != 0) {
      return ctx.fail(
          fmt::format("cannot reshape {} to [{}]", x.to_string(), fmt::join(target, ", ")));
    }
    s.dims[static_cast<std::size_t>(inferred)] = total / known;
  } else if (known != total) {
    return ctx.fail(fmt::format("cannot reshape {} ({} elements) to {} ({} elements)",
                                x.to_string(), total, s.to_string(), known));
  }
  ctx.output(0) = {ctx.input(0).dtype, s};
  return {};  // a view: no kernel
}

// The axes of a Squeeze or Unsqueeze (the attribute before opset 13, input 1 since), or nullopt
// when the node gives none.
Result<std::optional<std::vector<int64_t>>> axes_of(const PlanContext& ctx) {
  if (ctx.node.opset < kAxesAsInputOpset) {
    const Attribute* a = ctx.node.attribute("axes");
    if (a == nullptr) return std::optional<std::vector<int64_t>>();
    return std::optional(a->ints);
  }
  if (!ctx.has_input(1)) return std::optional<std::vector<int64_t>>();
  auto axes = vector_operand(ctx, 1, "axes");
  if (!axes) return axes.error();
  return std::optional(std::move(axes).value());
}

// Without axes, every dim of 1 goes. Given axes (even none, as ONNX's shape inference reads an
// empty axes tensor) must each name a dim of 1.
Status plan_squeeze(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  auto axes = axes_of(ctx);
  if (!axes) return axes.error();
  std::array<bool, kMaxRank> drop{};
  if (axes->has_value()) {
    auto normalized = normalize_axes(ctx, **axes, x.rank);
    if (!normalized) return normalized.error();
    for (const int32_t a : *normalized) {
      if (x.dims[at(a)] != 1) {
        return ctx.fail(
            fmt::format("cannot squeeze axis {} of {}: its dim is not 1", a, x.to_string()));
      }
      drop[at(a)] = true;
    }
  } else {
    for (int32_t d = 0; d < x.rank; ++d) drop[at(d)] = x.dims[at(d)] == 1;
  }
  Shape s;
  for (int32_t d = 0; d < x.rank; ++d) {
    if (!drop[at(d)]) s.dims[at(s.rank++)] = x.dims[at(d)];
  }
  ctx.output(0) = {ctx.input(0).dtype, s};
  return {};  // a view: no kernel
}

// Axes index the OUTPUT, whose rank is the input's plus the number of axes.
Status plan_unsqueeze(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  auto axes = axes_of(ctx);
  if (!axes) return axes.error();
  if (!axes->has_value()) return ctx.fail("axes are required");
  const std::vector<int64_t>& list = **axes;
  const auto rank = static_cast<int64_t>(x.rank) + static_cast<int64_t>(list.size());
  if (rank > kMaxRank) {
    return ctx.unsupported(fmt::format("output rank {} exceeds {}", rank, kMaxRank));
  }
  auto normalized = normalize_axes(ctx, list, static_cast<int32_t>(rank));
  if (!normalized) return normalized.error();
  Shape s;
  s.rank = static_cast<int32_t>(rank);
  for (const int32_t a : *normalized) s.dims[at(a)] = -1;  // a new dim of 1, marked
  int32_t next = 0;
  for (int32_t d = 0; d < s.rank; ++d) {
    s.dims[at(d)] = s.dims[at(d)] == -1 ? 1 : x.dims[at(next++)];
  }
  ctx.output(0) = {ctx.input(0).dtype, s};
  return {};  // a view: no kernel
}

// ---------------------------------------------------------------- shape queries

// Opset 15's start and end: negative ones count from the back, both clamp to [0, rank].
Status plan_shape(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const auto normalize = [&](int64_t v) {
    if (v < 0) v += x.rank;
    return std::clamp<int64_t>(v, 0, x.rank);
  };
  const int64_t start = normalize(ctx.node.int_attr("start", 0));
  const int64_t end = normalize(ctx.node.int_attr("end", x.rank));
  const int64_t count = std::max<int64_t>(0, end - start);
  Strides dims{};
  std::copy_n(x.dims.begin() + start, count, dims.begin());
  ctx.output(0) = {DType::kInt64, Shape::of(std::array<int64_t, 1>{count})};
  return ctx.choose(make_kernel([dims, count](const KernelIO& io) {
    if (count > 0) std::memcpy(io.output<int64_t>(0), dims.data(), at(count) * sizeof(int64_t));
  }));
}

Status plan_size(PlanContext& ctx) {
  const int64_t n = ctx.input(0).shape.elements();
  ctx.output(0) = {DType::kInt64, Shape{}};
  return ctx.choose(make_kernel([n](const KernelIO& io) { *io.output<int64_t>(0) = n; }));
}

// The output takes `value`'s dtype (one element; float32 0 without it).
Status plan_constant_of_shape(PlanContext& ctx) {
  auto dims = vector_operand(ctx, 0, "the shape");
  if (!dims) return dims.error();
  if (dims->size() > static_cast<std::size_t>(kMaxRank)) {
    return ctx.unsupported(fmt::format("output rank {} exceeds {}", dims->size(), kMaxRank));
  }
  Shape s = Shape::of(*dims);
  if (Status ok = check_bounded(ctx, s); !ok) return ok.error();
  DType dtype = DType::kFloat32;
  uint64_t pattern = 0;  // the value's bytes, little-endian, in its element size
  if (const Attribute* value = ctx.node.attribute("value"); value != nullptr) {
    if (value->kind != Attribute::Kind::kTensor || value->t.elements() != 1) {
      return ctx.fail("value must be a tensor of one element");
    }
    dtype = value->t.dtype;
    std::memcpy(&pattern, value->t.bytes.data(), value->t.bytes.size());
  }
  ctx.output(0) = {dtype, s};
  const int64_t n = s.elements();
  const std::size_t size = dtype_bytes(dtype);
  auto host = make_kernel([n, size, pattern](const KernelIO& io) {
    const auto fill = [&]<class T>(T* out) {
      T v;
      std::memcpy(&v, &pattern, sizeof v);
      std::fill_n(out, n, v);
    };
    if (n == 0) return;
    if (size == 1) fill(io.output<uint8_t>(0));
    if (size == 4) fill(io.output<uint32_t>(0));
    if (size == 8) fill(io.output<uint64_t>(0));
  });
  return ctx.choose(std::move(host), FillCall{dtype, pattern, n});
}

// ---------------------------------------------------------------- Gather

// out[o, j..., i] = data[o, indices[j...], i]: for each index, one row of `row_bytes` (the dims
// after axis) per outer position (the dims before axis).
struct HostGather {
  int64_t outer = 0;
  int64_t axis_dim = 0;
  int64_t indices = 0;
  std::size_t row_bytes = 0;
};

// Reads an index from memory a client may be writing: exactly one load, so the value checked is
// the value used (a plain load may be repeated by the compiler). Not synchronisation: the result
// may be stale, never out of range.
template <class I>
int64_t read_once(const I* p) {
  return *static_cast<const volatile I*>(p);
}

Error index_error(int64_t index, int64_t dim) {
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("index {} is out of range [-{}, {})", index, dim, dim));
}

template <class I>
Status gather(const HostGather& g, const I* indices, const std::byte* data, std::byte* out) {
  const auto row = static_cast<int64_t>(g.row_bytes);
  for (int64_t j = 0; j < g.indices; ++j) {
    const int64_t raw = read_once(indices + j);
    const int64_t idx = raw < 0 ? raw + g.axis_dim : raw;
    if (idx < 0 || idx >= g.axis_dim) return index_error(raw, g.axis_dim);
    if (row == 0) continue;
    for (int64_t o = 0; o < g.outer; ++o) {
      std::memcpy(out + (o * g.indices + j) * row, data + (o * g.axis_dim + idx) * row,
                  g.row_bytes);
    }
  }
  return {};
}

Status plan_gather(PlanContext& ctx) {
  const TensorInfo& data = ctx.input(0);
  const TensorInfo& indices = ctx.input(1);
  if (data.shape.rank == 0) return ctx.fail("data must have rank >= 1");
  if (!is_integer(indices.dtype)) {
    return ctx.fail(
        fmt::format("indices must be int64 or int32, not {}", dtype_name(indices.dtype)));
  }
  auto axis = ctx.axis(ctx.node.int_attr("axis", 0), data.shape.rank);
  if (!axis) return axis.error();
  const int32_t a = *axis;
  const int32_t rank = data.shape.rank - 1 + indices.shape.rank;
  if (rank > kMaxRank) {
    return ctx.unsupported(fmt::format("output rank {} exceeds {}", rank, kMaxRank));
  }
  HostGather g;
  g.outer = product(data.shape, 0, a);
  g.axis_dim = data.shape.dims[at(a)];
  g.indices = indices.shape.elements();
  g.row_bytes = static_cast<std::size_t>(product(data.shape, a + 1, data.shape.rank)) *
                dtype_bytes(data.dtype);
  // Constant indices are checked now too, so a bad model fails when planning.
  if (indices.value != nullptr) {
    for (const int64_t i : ctx.ints(1)) {
      if (i < -g.axis_dim || i >= g.axis_dim) {
        return ctx.fail(index_error(i, g.axis_dim).message);
      }
    }
  }
  Shape out;
  out.rank = rank;
  std::copy_n(data.shape.dims.begin(), a, out.dims.begin());
  std::copy_n(indices.shape.dims.begin(), indices.shape.rank, out.dims.begin() + a);
  std::copy(data.shape.dims.begin() + a + 1, data.shape.dims.begin() + data.shape.rank,
            out.dims.begin() + a + indices.shape.rank);
  if (Status ok = check_bounded(ctx, out); !ok) return ok.error();
  ctx.output(0) = {data.dtype, out};
  GatherCall call;
  call.outer = g.outer;
  call.axis_dim = g.axis_dim;
  call.indices = g.indices;
  call.inner_bytes = static_cast<int64_t>(g.row_bytes);
  call.index_dtype = indices.dtype;
  call.node_index = static_cast<int32_t>(&ctx.node - ctx.graph.nodes.data());
  if (indices.dtype == DType::kInt32) {
    return ctx.choose(make_kernel([g](const KernelIO& io) {
                        return gather(g, io.input<int32_t>(1), io.input<std::byte>(0),
                                      io.output<std::byte>(0));
                      }),
                      call);
  }
  return ctx.choose(make_kernel([g](const KernelIO& io) {
                      return gather(g, io.input<int64_t>(1), io.input<std::byte>(0),
                                    io.output<std::byte>(0));
                    }),
                    call);
}

// ---------------------------------------------------------------- Cast

// numpy's astype: float to integer truncates toward zero; a float that is NaN or out of the
// integer's range gives the integer's minimum (what numpy and ONNX Runtime give on x86, where
// C++ leaves it undefined). Anything nonzero (NaN too) is true; bools read as 0 or 1. Integer
// narrowing wraps.
template <class To, class From>
To cast_value(From v) {
  if constexpr (std::is_same_v<To, uint8_t>) {
    return v != From{0} ? 1 : 0;
  } else if constexpr (std::is_same_v<From, uint8_t>) {
    return v != 0 ? To{1} : To{0};
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    constexpr auto lowest = static_cast<From>(std::numeric_limits<To>::min());  // -2^k, exact
    if (!(v >= lowest && v < -lowest)) return std::numeric_limits<To>::min();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

Status plan_cast(PlanContext& ctx) {
  const TensorInfo& x = ctx.input(0);
  const Attribute* to_attr = ctx.node.attribute("to");
  if (to_attr == nullptr || to_attr->kind != Attribute::Kind::kInt) {
    return ctx.fail("the 'to' attribute is required");
  }
  const auto onnx_type = static_cast<int32_t>(to_attr->i);
  const DType to = dtype_from_onnx(onnx_type);
  if (!computable(to)) {
    return ctx.unsupported(
        fmt::format("cast to {} (ONNX data type {}); float32, int64, int32 and bool are supported",
                    to == DType::kInvalid ? "this type" : dtype_name(to), onnx_type));
  }
  ctx.output(0) = {to, x.shape};
  const int64_t n = x.shape.elements();
  std::unique_ptr<Kernel> kernel;
  dispatch_dtype(x.dtype, [&]<class From>() {
    dispatch_dtype(to, [&]<class To>() {
      kernel = make_kernel([n](const KernelIO& io) {
        const From* in = io.input<From>(0);
        To* out = io.output<To>(0);
        if constexpr (std::is_same_v<From, To> && !std::is_same_v<To, uint8_t>) {
          // The memory plan may put the output over the input.
          if (n > 0 && static_cast<const void*>(in) != out) {
            std::memcpy(out, in, at(n) * sizeof(To));
          }
        } else {
          for (int64_t i = 0; i < n; ++i) out[i] = cast_value<To>(in[i]);
        }
      });
    });
  });
  if (kernel == nullptr) {
    return ctx.unsupported(fmt::format("cast from {}", dtype_name(x.dtype)));
  }
  return ctx.choose(std::move(kernel), CastCall{x.dtype, to, n});
}

constexpr OpDef kOps[] = {
    {"Identity", plan_identity, Aliasing::kView},
    {"Flatten", plan_flatten, Aliasing::kView},
    {"Reshape", plan_reshape, Aliasing::kView, /*value_operands=*/0b10},
    {"Squeeze", plan_squeeze, Aliasing::kView, /*value_operands=*/0b10},
    {"Unsqueeze", plan_unsqueeze, Aliasing::kView, /*value_operands=*/0b10},
    {"Shape", plan_shape, Aliasing::kNone, 0, /*shapes_only=*/true},
    {"Size", plan_size, Aliasing::kNone, 0, /*shapes_only=*/true},
    {"ConstantOfShape", plan_constant_of_shape, Aliasing::kNone, /*value_operands=*/0b1},
    {"Gather", plan_gather},
    {"Cast", plan_cast, Aliasing::kElementwise},
};

}  // namespace

std::span<const OpDef> tensor_ops() { return kOps; }

}  // namespace coproc::runtime::detail
