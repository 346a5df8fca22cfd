// Views and data movement: operators that rearrange or select elements without arithmetic.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/ops.h"

namespace coproc::runtime::detail {
namespace {

Result<std::unique_ptr<Kernel>> plan_identity(PlanContext& ctx) {
  ctx.output(0) = ctx.input(0);
  ctx.output(0).value = nullptr;
  return std::unique_ptr<Kernel>();
}

Result<std::unique_ptr<Kernel>> plan_flatten(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const int64_t axis = ctx.node.int_attr("axis", 1);
  const int64_t a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a > x.rank) {
    return ctx.fail(fmt::format("axis {} is out of range for {}", axis, x.to_string()));
  }
  const auto ai = static_cast<int32_t>(a);
  const int64_t dims[2] = {product(x, 0, ai), product(x, ai, x.rank)};
  ctx.output(0) = {ctx.input(0).dtype, Shape::of(dims)};
  return std::unique_ptr<Kernel>();
}

// ONNX Reshape: 0 copies the input's dim at that index (a literal 0 with allowzero), -1 takes
// whatever is left.
Result<std::unique_ptr<Kernel>> plan_reshape(PlanContext& ctx) {
  const Shape& x = ctx.input(0).shape;
  const std::vector<int64_t> target = ctx.ints(1);
  const bool allowzero = ctx.node.int_attr("allowzero", 0) != 0;
  if (ctx.input(1).shape.rank != 1) return ctx.fail("the shape must be 1-D");
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
        return ctx.fail(fmt::format("shape [{}] copies dim {} of input {}",
                                    fmt::join(target, ", "), d, x.to_string()));
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
  return std::unique_ptr<Kernel>();
}

constexpr OpDef kOps[] = {
    {"Identity", plan_identity, Aliasing::kView},
    {"Flatten", plan_flatten, Aliasing::kView},
    {"Reshape", plan_reshape, Aliasing::kView, /*value_operands=*/0b10},
};

}  // namespace

std::span<const OpDef> tensor_ops() { return kOps; }

}  // namespace coproc::runtime::detail
