// Planner: concrete input shapes -> a Plan. Validates the inputs against the model, resolves
// every tensor's shape node by node (the ONNX rules for our operators), fills in each kernel
// call's parameters, then asks memory_plan where every tensor lives.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <utility>

#include "runtime/memory_plan.h"
#include "runtime/plan.h"

namespace coproc::runtime {

Plan::Plan() = default;
Plan::~Plan() = default;

std::size_t Plan::output_bytes(std::size_t j) const {
  return static_cast<std::size_t>(output_shapes_[j].elements()) * sizeof(float);
}
std::size_t Plan::num_kernel_calls() const { return steps_.size(); }
std::size_t Plan::num_output_copies() const { return copies_.size(); }

namespace detail {
namespace {

namespace cpu = kernels::cpu;

int64_t product(const Shape& s, int32_t begin, int32_t end) {
  int64_t n = 1;
  for (int32_t d = begin; d < end; ++d) n *= s.dims[static_cast<std::size_t>(d)];
  return n;
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
  std::vector<Step> steps;
  std::vector<OutputCopy> copies;
  std::size_t scratch_bytes = 0;
};

class Builder {
 public:
  Builder(const Graph& graph, std::span<const Shape> input_shapes)
      : graph_(graph), input_shapes_(input_shapes), shapes_(graph.values.size()) {}

  Result<PlanParts> build() {
    if (Status s = check_inputs(); !s) return s.error();
    for (std::size_t v = 0; v < graph_.values.size(); ++v) {
      const Value& value = graph_.values[v];
      const auto index = static_cast<std::size_t>(value.index);
      if (value.kind == Value::Kind::kInput) shapes_[v] = input_shapes_[index];
      if (value.kind == Value::Kind::kWeight) shapes_[v] = graph_.weights[index].shape;
    }
    std::vector<Step> steps;
    for (const Node& node : graph_.nodes) {
      Step step;
      step.op = node.op;
      if (Status s = lower(node, &step); !s) return s.error();
      // Inputs and weights are bounded, so no output computation above can overflow: a
      // broadcast or product has at most (2^31)^2 elements.
      step.elements = bounded_elements(shapes_[static_cast<std::size_t>(node.output)].view());
      if (step.elements < 0) {
        return node_error(node, fmt::format("the output {} has more than {} elements",
                                            shape_of(node.output).to_string(), kMaxTensorElements));
      }
      if (!is_view(node.op)) steps.push_back(step);
    }

    const Storage storage = plan_storage(graph_, shapes_);
    std::size_t s = 0;
    for (const Node& node : graph_.nodes) {
      if (is_view(node.op)) continue;
      Step& step = steps[s++];
      step.out = storage.refs[static_cast<std::size_t>(node.output)];
      for (std::size_t k = 0; k < node.inputs.size(); ++k) {
        if (node.inputs[k] >= 0)
          step.in[k] = storage.refs[static_cast<std::size_t>(node.inputs[k])];
      }
    }
    PlanParts parts;
    for (const int32_t v : graph_.outputs) {
      parts.output_shapes.push_back(shapes_[static_cast<std::size_t>(v)]);
    }
    parts.steps = std::move(steps);
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

  const Shape& shape_of(int32_t value) const { return shapes_[static_cast<std::size_t>(value)]; }

  Error node_error(const Node& node, const std::string& problem,
                   ErrorCode code = ErrorCode::kInvalidArgument) const {
    return make_error(code,
                      fmt::format("node '{}' ({}): {}", node.name, op_name(node.op), problem));
  }

  Status lower(const Node& node, Step* step) {
    Shape& out = shapes_[static_cast<std::size_t>(node.output)];
    const Shape& x = shape_of(node.inputs[0]);
    switch (node.op) {
      case OpKind::kGemm:
        return lower_gemm(node, step, &out);
      case OpKind::kMatMul:
        return lower_matmul(node, step, &out);
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul:
      case OpKind::kDiv: {
        const Shape& y = shape_of(node.inputs[1]);
        if (!cpu::make_broadcast(x.view(), y.view(), &step->broadcast)) {
          return node_error(
              node, fmt::format("shapes {} and {} do not broadcast", x.to_string(), y.to_string()));
        }
        out = Shape::of(
            {step->broadcast.out_dims, static_cast<std::size_t>(step->broadcast.out_rank)});
        return {};
      }
      case OpKind::kRelu:
      case OpKind::kSigmoid:
      case OpKind::kTanh:
      case OpKind::kIdentity:
        out = x;
        return {};
      case OpKind::kSoftmax:
        return lower_softmax(node, x, step, &out);
      case OpKind::kFlatten: {
        int64_t axis = node.axis < 0 ? node.axis + x.rank : node.axis;
        if (axis < 0 || axis > x.rank) {
          return node_error(
              node, fmt::format("axis {} is out of range for {}", node.axis, x.to_string()));
        }
        const auto a = static_cast<int32_t>(axis);
        const int64_t dims[2] = {product(x, 0, a), product(x, a, x.rank)};
        out = Shape::of(dims);
        return {};
      }
      case OpKind::kReshape:
        return lower_reshape(node, x, &out);
    }
    return {};
  }

  // The node's B packed at load, or nullptr when its GEMM runs on OpenBLAS.
  const PackedGemm* packed_of(const Node& node) const {
    return node.packed >= 0 ? &graph_.packed[static_cast<std::size_t>(node.packed)] : nullptr;
  }

  Status lower_gemm(const Node& node, Step* step, Shape* out) {
    const Shape& a = shape_of(node.inputs[0]);
    const Shape& b = shape_of(node.inputs[1]);
    if (a.rank != 2 || b.rank != 2) {
      return node_error(node,
                        fmt::format("A {} and B {} must be 2-D", a.to_string(), b.to_string()));
    }
    GemmCall& g = step->gemm;
    g.trans_a = node.trans_a;
    g.trans_b = node.trans_b;
    g.m = node.trans_a ? a.dims[1] : a.dims[0];
    g.k = node.trans_a ? a.dims[0] : a.dims[1];
    g.n = node.trans_b ? b.dims[0] : b.dims[1];
    const int64_t kb = node.trans_b ? b.dims[1] : b.dims[0];
    if (kb != g.k) {
      return node_error(node, fmt::format("inner dims differ: op(A) is [{}, {}], op(B) is [{}, {}]",
                                          g.m, g.k, kb, g.n));
    }
    g.lda = std::max<int64_t>(1, a.dims[1]);
    g.ldb = std::max<int64_t>(1, b.dims[1]);
    g.alpha = node.alpha;
    const PackedGemm* packed = packed_of(node);
    if (packed != nullptr) g.packed = &packed->b;
    const int64_t mn[2] = {g.m, g.n};
    *out = Shape::of(mn);
    const bool has_c = node.inputs.size() > 2 && node.inputs[2] >= 0;
    // ONNX: with beta == 0 the product ignores C entirely (even NaN or inf in it).
    if (has_c && node.beta != 0.0f) {
      const Shape& c = shape_of(node.inputs[2]);
      if (!cpu::make_broadcast(c.view(), out->view(), &step->broadcast) ||
          !(Shape::of({step->broadcast.out_dims,
                       static_cast<std::size_t>(step->broadcast.out_rank)}) == *out)) {
        return node_error(
            node, fmt::format("C {} does not broadcast to {}", c.to_string(), out->to_string()));
      }
      if (packed != nullptr && !packed->bias.empty()) {
        g.bias = packed->bias.data();  // beta * C, added by the GEMM's epilogue
      } else {
        g.copy_c = true;
        g.beta = node.beta;
      }
    }
    return {};
  }

  // N-D lhs [..., M, K] times 2-D rhs [K, N] is one GEMM over the lhs's rows.
  Status lower_matmul(const Node& node, Step* step, Shape* out) {
    const Shape& a = shape_of(node.inputs[0]);
    const Shape& b = shape_of(node.inputs[1]);
    if (a.rank < 2 || b.rank != 2) {
      return node_error(node,
                        fmt::format("only N-D x 2-D (N >= 2) is supported, not {} x {}",
                                    a.to_string(), b.to_string()),
                        ErrorCode::kUnsupported);
    }
    GemmCall& g = step->gemm;
    g.k = a.dims[static_cast<std::size_t>(a.rank - 1)];
    g.m = product(a, 0, a.rank - 1);
    g.n = b.dims[1];
    if (b.dims[0] != g.k) {
      return node_error(node,
                        fmt::format("inner dims differ: {} x {}", a.to_string(), b.to_string()));
    }
    g.lda = std::max<int64_t>(1, g.k);
    g.ldb = std::max<int64_t>(1, g.n);
    if (const PackedGemm* packed = packed_of(node); packed != nullptr) g.packed = &packed->b;
    *out = a;
    out->dims[static_cast<std::size_t>(a.rank - 1)] = g.n;
    return {};
  }

  Status lower_softmax(const Node& node, const Shape& x, Step* step, Shape* out) {
    const int64_t axis = node.axis < 0 ? node.axis + x.rank : node.axis;
    if (axis < 0 || axis >= x.rank) {
      return node_error(node,
                        fmt::format("axis {} is out of range for {}", node.axis, x.to_string()));
    }
    const auto a = static_cast<int32_t>(axis);
    SoftmaxCall& s = step->softmax;
    s.outer = product(x, 0, a);
    if (node.softmax_as_2d) {  // opset < 13: rows of the input flattened to 2-D at axis
      s.n = product(x, a, x.rank);
      s.inner = 1;
    } else {
      s.n = x.dims[static_cast<std::size_t>(a)];
      s.inner = product(x, a + 1, x.rank);
    }
    *out = x;
    return {};
  }

  // ONNX Reshape: 0 copies the input's dim at that index (a literal 0 with allowzero), -1 takes
  // whatever is left.
  Status lower_reshape(const Node& node, const Shape& x, Shape* out) const {
    if (node.shape.size() > static_cast<std::size_t>(kMaxRank)) {
      return node_error(node, fmt::format("target rank {} exceeds {}", node.shape.size(), kMaxRank),
                        ErrorCode::kUnsupported);
    }
    Shape s;
    s.rank = static_cast<int32_t>(node.shape.size());
    int inferred = -1;
    int64_t known = 1;
    for (int32_t d = 0; d < s.rank; ++d) {
      int64_t dim = node.shape[static_cast<std::size_t>(d)];
      if (dim == 0 && !node.allowzero) {
        if (d >= x.rank) {
          return node_error(node, fmt::format("shape {} copies dim {} of input {}",
                                              fmt::join(node.shape, ","), d, x.to_string()));
        }
        dim = x.dims[static_cast<std::size_t>(d)];
      }
      if (dim == -1) {
        if (inferred >= 0) return node_error(node, "more than one -1 in the shape");
        inferred = d;
        continue;
      }
      if (dim < 0 || dim > kMaxTensorElements) {
        return node_error(node, fmt::format("invalid dim {} in the shape", dim));
      }
      s.dims[static_cast<std::size_t>(d)] = dim;
      known *= dim;
      if (known > kMaxTensorElements) {
        return node_error(node, fmt::format("the shape [{}] has more than {} elements",
                                            fmt::join(node.shape, ", "), kMaxTensorElements));
      }
    }
    const int64_t total = x.elements();
    if (inferred >= 0) {
      if (known == 0 || total % known != 0) {
        return node_error(node, fmt::format("cannot reshape {} to [{}]", x.to_string(),
                                            fmt::join(node.shape, ", ")));
      }
      s.dims[static_cast<std::size_t>(inferred)] = total / known;
    } else if (known != total) {
      return node_error(node, fmt::format("cannot reshape {} ({} elements) to {} ({} elements)",
                                          x.to_string(), total, s.to_string(), known));
    }
    *out = s;
    return {};
  }

  const Graph& graph_;
  std::span<const Shape> input_shapes_;
  std::vector<Shape> shapes_;
};

}  // namespace

Result<std::unique_ptr<Plan>> Planner::build(const Model& model,
                                             std::span<const Shape> input_shapes) {
  auto parts = Builder(*model.graph_, input_shapes).build();
  if (!parts) return parts.error();
  std::unique_ptr<Plan> plan(new Plan());
  plan->input_shapes_.assign(input_shapes.begin(), input_shapes.end());
  plan->output_shapes_ = std::move(parts->output_shapes);
  plan->steps_ = std::move(parts->steps);
  plan->copies_ = std::move(parts->copies);
  plan->scratch_bytes_ = parts->scratch_bytes;
  return plan;
}

}  // namespace detail
}  // namespace coproc::runtime
