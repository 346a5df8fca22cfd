// The operator registry and the helpers plan() functions share.
#include "ops/ops.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <unordered_map>

namespace coproc::runtime::detail {

const OpDef* find_op(std::string_view name) {
  static const auto* const table = [] {
    auto* t = new std::unordered_map<std::string_view, const OpDef*>();
    for (const auto ops :
         {elementwise_ops(), linalg_ops(), tensor_ops(), copy_ops(), reduce_ops(), fused_ops()}) {
      for (const OpDef& op : ops) {
        const bool fresh = t->emplace(op.name, &op).second;
        COPROC_CHECK(fresh && "an operator is defined twice");
      }
    }
    return t;
  }();
  const auto it = table->find(name);
  return it == table->end() ? nullptr : it->second;
}

const TensorInfo& PlanContext::input(std::size_t k) const {
  static const TensorInfo absent;
  return k < in.size() ? in[k] : absent;
}

Error node_error(const Node& node, const std::string& problem, ErrorCode code) {
  return make_error(code, fmt::format("node '{}' ({}): {}", node.name, node.op, problem));
}

Error PlanContext::fail(const std::string& problem, ErrorCode code) const {
  return node_error(node, problem, code);
}

std::vector<int64_t> PlanContext::ints(std::size_t k) const {
  COPROC_CHECK(k < in.size() && in[k].value != nullptr);
  return in[k].value->to_ints();
}

Result<int32_t> PlanContext::axis(int64_t axis, int32_t rank) const {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    return fail(fmt::format("axis {} is out of range for rank {}", axis, rank));
  }
  return static_cast<int32_t>(a);
}

std::string shape_string(const Shape& shape) { return shape.to_string(); }

bool is_float(DType dtype) { return dtype == DType::kFloat32; }
bool is_integer(DType dtype) { return dtype == DType::kInt64 || dtype == DType::kInt32; }

int64_t product(const Shape& s, int32_t begin, int32_t end) {
  int64_t n = 1;
  for (int32_t d = begin; d < end; ++d) n *= s.dims[static_cast<std::size_t>(d)];
  return n;
}

Status check_bounded(const PlanContext& ctx, const Shape& s) {
  if (bounded_elements(s.view()) >= 0) return {};
  return ctx.fail(fmt::format("the output {} has a negative dim or more than {} elements",
                              s.to_string(), kMaxTensorElements));
}

int64_t StridedLayout::elements() const {
  int64_t n = 1;
  for (int32_t d = 0; d < rank; ++d) n *= dims[at(d)];
  return n;
}

Strides dense_strides(const Shape& shape) {
  Strides strides{};
  int64_t stride = 1;
  for (int32_t d = shape.rank - 1; d >= 0; --d) {
    strides[at(d)] = stride;
    stride *= shape.dims[at(d)];
  }
  return strides;
}

Status choose_elementwise(const PlanContext& ctx, std::unique_ptr<Kernel> host, ElementwiseOp op,
                          DType value_dtype, const Shape& out) {
  if (!ctx.describe) return ctx.choose(std::move(host));
  // The call made where it stays, with no allocation.
  if (ctx.in.size() > 3) return ctx.fail("internal: more than 3 elementwise operands");
  ElementwiseCall& call = ctx.choice.call.emplace<ElementwiseCall>();
  call.op = op;
  call.dtype = value_dtype;
  call.operands = static_cast<int32_t>(ctx.in.size());
  call.layout.rank = out.rank;
  call.layout.dims = out.dims;
  call.layout.out = dense_strides(out);
  Strides* const operand_strides[3] = {&call.layout.a, &call.layout.b, &call.layout.c};
  for (std::size_t k = 0; k < ctx.in.size(); ++k) {
    const Shape& s = ctx.input(k).shape;
    call.input_dtypes[k] = ctx.input(k).dtype;
    // numpy broadcasting, right-aligned: a dim of 1 broadcasts (stride 0), others must match.
    if (s.rank > out.rank) return ctx.fail("internal: operands do not broadcast to the output");
    Strides& strides = *operand_strides[k];
    int64_t stride = 1;
    for (int32_t d = out.rank - 1, sd = s.rank - 1; sd >= 0; --d, --sd) {
      const int64_t dim = s.dims[at(sd)];
      if (dim != 1 && dim != out.dims[at(d)]) {
        return ctx.fail("internal: operands do not broadcast to the output");
      }
      strides[at(d)] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
  }
  ctx.choice.host = std::move(host);
  return {};
}

Result<std::vector<int64_t>> vector_operand(const PlanContext& ctx, std::size_t k,
                                            const char* what) {
  if (!ctx.has_input(k)) return ctx.fail(fmt::format("{} (input {}) is missing", what, k));
  if (ctx.input(k).shape.rank != 1) {
    return ctx.fail(fmt::format("{} must be 1-D, not {}", what, ctx.input(k).shape.to_string()));
  }
  return ctx.ints(k);
}

Result<std::vector<int32_t>> normalize_axes(const PlanContext& ctx, std::span<const int64_t> axes,
                                            int32_t rank) {
  std::vector<int32_t> out;
  uint32_t seen = 0;
  for (const int64_t axis : axes) {
    auto a = ctx.axis(axis, rank);
    if (!a) return a.error();
    if ((seen >> a.value() & 1u) != 0) {
      return ctx.fail(fmt::format("axes [{}] name axis {} twice", fmt::join(axes, ", "), *a));
    }
    seen |= 1u << a.value();
    out.push_back(a.value());
  }
  return out;
}

bool make_multi_broadcast(std::span<const Shape> shapes, MultiBroadcast* out) {
  COPROC_CHECK(shapes.size() <= 4);
  int32_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.rank);
  Shape o;
  o.rank = rank;
  for (int32_t d = 0; d < rank; ++d) {
    int64_t dim = 1;
    for (const Shape& s : shapes) {
      const int32_t sd = d - (rank - s.rank);
      if (sd < 0) continue;
      const int64_t v = s.dims[static_cast<std::size_t>(sd)];
      if (v == dim || v == 1) continue;
      if (dim != 1) return false;
      dim = v;
    }
    o.dims[static_cast<std::size_t>(d)] = dim;
  }
  out->out = o;
  out->strides.assign(shapes.size(), {});
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    int64_t stride = 1;
    for (int32_t d = rank - 1; d >= 0; --d) {
      const int32_t sd = d - (rank - s.rank);
      if (sd < 0) break;
      const int64_t v = s.dims[static_cast<std::size_t>(sd)];
      out->strides[k][static_cast<std::size_t>(d)] = v == 1 ? 0 : stride;
      stride *= v;
    }
  }
  return true;
}

}  // namespace coproc::runtime::detail
